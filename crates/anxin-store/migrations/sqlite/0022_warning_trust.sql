-- Issue 4: how an imported CAP alert's sender was judged, a stable code (NULL for local
-- warnings): `signature_valid` (XML-DSig verified with the sender's configured key),
-- `sender_listed` (trusted by name only), or why it landed as an untrusted draft
-- (`sender_not_trusted`, `signature_missing`, `signature_digest_mismatch`, `signature_invalid`,
-- `signature_key_mismatch`, `key_unavailable`). Shown on the warning page and in the API.
ALTER TABLE warnings ADD COLUMN trust TEXT;
