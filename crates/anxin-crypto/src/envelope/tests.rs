#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use sm4::cipher::{BlockDecrypt, BlockEncrypt, KeyInit as _};

use super::*;

fn uid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn ring(current: &str, keys: &[&MasterKey]) -> KeyRing {
    KeyRing::new(current, keys.iter().map(|k| (*k).clone()).collect()).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// ---- known-answer tests ---------------------------------------------------

#[test]
fn sm4_block_vector_gbt_32907() {
    let key = hex("0123456789abcdeffedcba9876543210");
    let cipher = sm4::Sm4::new_from_slice(&key).unwrap();
    let mut block = sm4::cipher::Block::<sm4::Sm4>::clone_from_slice(&key);
    cipher.encrypt_block(&mut block);
    assert_eq!(block.as_slice(), hex("681edf34d206965e86b3e94f536e4246"));
    cipher.decrypt_block(&mut block);
    assert_eq!(block.as_slice(), key);
}

#[test]
fn sm4_gcm_vector_rfc8998() {
    // RFC 8998 Appendix A.1, through the same seal/open used for fields.
    let key = hex("0123456789ABCDEFFEDCBA9876543210");
    let nonce: [u8; 12] = hex("00001234567800000000ABCD").try_into().unwrap();
    let aad = hex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2");
    let pt = hex(concat!(
        "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD",
        "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
    ));
    let expected = hex(concat!(
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735",
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D",
        "83DE3541E4C2B58177E065A9BF7B62EC"
    ));
    let mut out = pt.clone();
    seal(Algorithm::Sm4Gcm, &key, &nonce, &aad, &mut out, 0).unwrap();
    assert_eq!(out, expected);
    let back = open(Algorithm::Sm4Gcm, &key, &nonce, &aad, &out).unwrap();
    assert_eq!(*back, pt);
}

#[test]
fn aes_256_gcm_vector() {
    // NIST GCM test case 14 (McGrew & Viega): 256-bit zero key, zero IV,
    // one zero block.
    let key = [0u8; 32];
    let nonce = [0u8; 12];
    let mut out = vec![0u8; 16];
    seal(Algorithm::Aes256Gcm, &key, &nonce, &[], &mut out, 0).unwrap();
    assert_eq!(
        out,
        hex("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919")
    );
}

// ---- algorithms -----------------------------------------------------------

#[test]
fn algorithm_names_round_trip() {
    for alg in [Algorithm::Aes256Gcm, Algorithm::Sm4Gcm] {
        assert_eq!(alg.as_str().parse::<Algorithm>().unwrap(), alg);
        assert_eq!(Algorithm::from_byte(alg.to_byte()), Some(alg));
    }
    assert_eq!("SM4-GCM".parse::<Algorithm>().unwrap(), Algorithm::Sm4Gcm);
    assert_eq!(
        "aes-128-gcm".parse::<Algorithm>().unwrap_err().code(),
        "crypto.unknown_algorithm"
    );
    assert_eq!(Algorithm::Aes256Gcm as u8, 1);
    assert_eq!(Algorithm::Sm4Gcm as u8, 2);
}

// ---- field encryption -----------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip_both_algorithms(
        plaintext in proptest::collection::vec(any::<u8>(), 0..512),
        aad in proptest::collection::vec(any::<u8>(), 0..64),
        sm4 in any::<bool>(),
    ) {
        let alg = if sm4 { Algorithm::Sm4Gcm } else { Algorithm::Aes256Gcm };
        let dek = DataKey::generate(uid(42), alg);
        let ct = encrypt(&dek, &plaintext, &aad).unwrap();
        prop_assert_eq!(ct.len(), plaintext.len() + FIELD_OVERHEAD);
        prop_assert_eq!(peek_key_id(&ct).unwrap(), (alg, uid(42)));
        prop_assert_eq!(decrypt(&dek, &ct, &aad).unwrap(), plaintext);
    }

    #[test]
    fn any_flipped_bit_fails(
        plaintext in proptest::collection::vec(any::<u8>(), 0..64),
        sm4 in any::<bool>(),
        pos in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let alg = if sm4 { Algorithm::Sm4Gcm } else { Algorithm::Aes256Gcm };
        let dek = DataKey::generate(uid(1), alg);
        let mut ct = encrypt(&dek, &plaintext, b"people.phone").unwrap();
        let i = pos.index(ct.len());
        ct[i] ^= 1 << bit;
        prop_assert!(decrypt(&dek, &ct, b"people.phone").is_err());
    }
}

#[test]
fn header_layout() {
    let dek = DataKey::generate(uid(0x0102), Algorithm::Sm4Gcm);
    let ct = encrypt(&dek, b"13800138000", b"people.phone").unwrap();
    assert_eq!(&ct[..2], b"AX");
    assert_eq!(ct[2], 1);
    assert_eq!(ct[3], 2);
    assert_eq!(&ct[4..20], uid(0x0102).as_bytes());
    assert_eq!(ct.len(), 20 + 12 + 11 + 16);
}

#[test]
fn nonces_are_fresh() {
    let dek = DataKey::generate(uid(1), Algorithm::Aes256Gcm);
    let a = encrypt(&dek, b"same", b"f").unwrap();
    let b = encrypt(&dek, b"same", b"f").unwrap();
    assert_ne!(a, b);
}

#[test]
fn wrong_aad_fails() {
    for alg in [Algorithm::Aes256Gcm, Algorithm::Sm4Gcm] {
        let dek = DataKey::generate(uid(1), alg);
        let ct = encrypt(&dek, b"110101199003077777", b"people.doc_number").unwrap();
        let err = decrypt(&dek, &ct, b"people.phone").unwrap_err();
        assert_eq!(err.code(), "crypto.decrypt_failed");
    }
}

#[test]
fn wrong_dek_id_fails() {
    let dek = DataKey::generate(uid(1), Algorithm::Aes256Gcm);
    let other = DataKey::generate(uid(2), Algorithm::Aes256Gcm);
    let ct = encrypt(&dek, b"x", b"f").unwrap();
    let err = decrypt(&other, &ct, b"f").unwrap_err();
    assert_eq!(
        err,
        CryptoError::WrongKey {
            expected: uid(2),
            found: uid(1)
        }
    );
    assert_eq!(err.code(), "crypto.wrong_key");
}

#[test]
fn same_id_other_key_bytes_fails() {
    let dek = DataKey::generate(uid(1), Algorithm::Aes256Gcm);
    let impostor = DataKey::generate(uid(1), Algorithm::Aes256Gcm);
    let ct = encrypt(&dek, b"x", b"f").unwrap();
    assert_eq!(
        decrypt(&impostor, &ct, b"f").unwrap_err(),
        CryptoError::DecryptFailed
    );
}

#[test]
fn header_alg_swapped_fails() {
    let aes = DataKey::generate(uid(1), Algorithm::Aes256Gcm);
    let mut ct = encrypt(&aes, b"x", b"f").unwrap();
    ct[3] = Algorithm::Sm4Gcm.to_byte();
    assert_eq!(
        decrypt(&aes, &ct, b"f").unwrap_err(),
        CryptoError::BadCiphertext
    );
}

#[test]
fn malformed_ciphertexts_are_rejected() {
    let dek = DataKey::generate(uid(1), Algorithm::Aes256Gcm);
    let good = encrypt(&dek, b"", b"f").unwrap();
    assert_eq!(good.len(), FIELD_OVERHEAD);
    assert_eq!(decrypt(&dek, &good, b"f").unwrap(), b"");
    for bad in [
        &good[..FIELD_OVERHEAD - 1],
        &[][..],
        b"AX",
        b"plain text that is long enough to pass the length check......",
    ] {
        assert_eq!(
            peek_key_id(bad).unwrap_err().code(),
            "crypto.bad_ciphertext"
        );
        assert!(decrypt(&dek, bad, b"f").is_err());
    }
    let mut v2 = good.clone();
    v2[2] = 2;
    assert_eq!(peek_key_id(&v2).unwrap_err(), CryptoError::BadCiphertext);
    let mut alg9 = good;
    alg9[3] = 9;
    assert_eq!(peek_key_id(&alg9).unwrap_err(), CryptoError::BadCiphertext);
}

// ---- master keys and key ring ---------------------------------------------

#[test]
fn master_key_config_string_round_trips() {
    for alg in [Algorithm::Aes256Gcm, Algorithm::Sm4Gcm] {
        let (key, config) = KeyRing::generate_master_key("2025-a", alg).unwrap();
        let parsed: MasterKey = config.expose().parse().unwrap();
        assert_eq!(parsed.id(), "2025-a");
        assert_eq!(parsed.alg(), alg);
        assert_eq!(parsed.key.expose(), key.key.expose());
        assert!(config.expose().starts_with(&format!("2025-a:{alg}:")));
    }
}

#[test]
fn master_key_parse_errors_never_echo_the_key() {
    let b64_32 = STANDARD.encode([0x5Au8; 32]);
    let b64_16 = STANDARD.encode([0x5Au8; 16]);
    let cases = [
        format!("k1:{b64_32}"),
        format!("k1:{b64_32}:aes-256-gcm"),
        format!("k1:aes-256-gcm:{b64_16}"),
        format!("k1:sm4-gcm:{b64_32}"),
        "k1:aes-256-gcm:not base64!".to_string(),
        format!("bad id:aes-256-gcm:{b64_32}"),
        format!(":aes-256-gcm:{b64_32}"),
    ];
    for case in &cases {
        let err = case.parse::<MasterKey>().unwrap_err();
        assert_eq!(err.code(), "crypto.bad_master_key", "{case}");
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains(&b64_32) && !shown.contains(&b64_16),
            "{shown}"
        );
        assert!(!shown.contains("WlpaWlpa"), "{shown}");
    }
    // Unpadded base64 is accepted.
    let unpadded = b64_32.trim_end_matches('=');
    assert!(format!("k1:aes-256-gcm:{unpadded}")
        .parse::<MasterKey>()
        .is_ok());
}

#[test]
fn master_key_deserializes_from_string_or_map() {
    let b64 = STANDARD.encode([1u8; 16]);
    #[derive(Deserialize)]
    struct Cfg {
        keys: Vec<MasterKey>,
    }
    let json = format!(
        r#"{{"keys": ["a:sm4-gcm:{b64}", {{"id": "b", "alg": "aes-256-gcm", "key": "{}"}}]}}"#,
        STANDARD.encode([2u8; 32])
    );
    let cfg: Cfg = serde_json::from_str(&json).unwrap();
    assert_eq!(cfg.keys[0].id(), "a");
    assert_eq!(cfg.keys[0].alg(), Algorithm::Sm4Gcm);
    assert_eq!(cfg.keys[1].id(), "b");
    assert_eq!(cfg.keys[1].alg(), Algorithm::Aes256Gcm);
    let bad = r#"{"keys": [{"id": "b", "alg": "aes-256-gcm", "key": "AAAA"}]}"#;
    let err = serde_json::from_str::<Cfg>(bad).err().unwrap().to_string();
    assert!(err.contains("bad") || err.contains("32 bytes"), "{err}");
}

#[test]
fn key_ring_validation() {
    let a = MasterKey::generate("a", Algorithm::Aes256Gcm).unwrap();
    let b = MasterKey::generate("b", Algorithm::Sm4Gcm).unwrap();
    let err = KeyRing::new("c", vec![a.clone(), b.clone()]).unwrap_err();
    assert_eq!(err.code(), "crypto.bad_key_ring");
    assert!(err.to_string().contains("'c'"));
    let dup = MasterKey::generate("a", Algorithm::Sm4Gcm).unwrap();
    assert!(KeyRing::new("a", vec![a.clone(), dup]).is_err());
    let r = KeyRing::new("b", vec![a, b]).unwrap();
    assert_eq!(r.current().id(), "b");
    assert!(r.get("a").is_some());
    assert!(r.get("z").is_none());
    assert_eq!(r.ids().collect::<Vec<_>>(), ["a", "b"]);
    assert!(MasterKey::new("x", Algorithm::Aes256Gcm, vec![0; 16]).is_err());
    assert!(MasterKey::generate("has:colon", Algorithm::Aes256Gcm).is_err());
    assert!(MasterKey::generate("x".repeat(65), Algorithm::Aes256Gcm).is_err());
}

#[test]
fn wrap_unwrap_round_trip_all_combinations() {
    for kek_alg in [Algorithm::Aes256Gcm, Algorithm::Sm4Gcm] {
        for dek_alg in [Algorithm::Aes256Gcm, Algorithm::Sm4Gcm] {
            let kek = MasterKey::generate("k", kek_alg).unwrap();
            let r = ring("k", &[&kek]);
            let (dek, w) = r.new_data_key(uid(7), dek_alg).unwrap();
            assert_eq!(w.kek_id, "k");
            assert_eq!(&w.bytes[..2], b"AW");
            assert_eq!(w.bytes[2], 1);
            assert_eq!(w.bytes[3], kek_alg.to_byte());
            assert_eq!(w.bytes.len(), 4 + 12 + 1 + dek_alg.key_len() + 16);
            let back = r.unwrap(uid(7), &w).unwrap();
            assert_eq!(back.id(), uid(7));
            assert_eq!(back.alg(), dek_alg);
            assert_eq!(back.key.expose(), dek.key.expose());
            let ct = encrypt(&dek, b"v", b"f").unwrap();
            assert_eq!(decrypt(&back, &ct, b"f").unwrap(), b"v");
        }
    }
}

#[test]
fn wrapped_key_is_bound_to_its_dek_id() {
    let kek = MasterKey::generate("k", Algorithm::Aes256Gcm).unwrap();
    let r = ring("k", &[&kek]);
    let (_, w) = r.new_data_key(uid(1), Algorithm::Aes256Gcm).unwrap();
    assert_eq!(
        r.unwrap(uid(2), &w).unwrap_err(),
        CryptoError::DecryptFailed
    );
}

#[test]
fn tampered_wrapped_key_fails() {
    let kek = MasterKey::generate("k", Algorithm::Sm4Gcm).unwrap();
    let r = ring("k", &[&kek]);
    let (_, w) = r.new_data_key(uid(1), Algorithm::Aes256Gcm).unwrap();
    for i in 0..w.bytes.len() {
        let mut t = w.clone();
        t.bytes[i] ^= 0x01;
        assert!(r.unwrap(uid(1), &t).is_err(), "byte {i}");
    }
    let mut short = w.clone();
    short.bytes.truncate(20);
    assert_eq!(
        r.unwrap(uid(1), &short).unwrap_err(),
        CryptoError::BadCiphertext
    );
}

#[test]
fn unwrap_without_the_kek_names_it() {
    let old = MasterKey::generate("old-2024", Algorithm::Aes256Gcm).unwrap();
    let new = MasterKey::generate("new-2025", Algorithm::Sm4Gcm).unwrap();
    let (_, w) = ring("old-2024", &[&old])
        .new_data_key(uid(1), Algorithm::Sm4Gcm)
        .unwrap();
    let err = ring("new-2025", &[&new]).unwrap(uid(1), &w).unwrap_err();
    assert_eq!(
        err,
        CryptoError::UnknownKey {
            id: "old-2024".into()
        }
    );
    assert_eq!(err.code(), "crypto.unknown_key");
    assert!(err.to_string().contains("old-2024"));
}

#[test]
fn rotation_rewrap_then_drop_old_kek() {
    let old = MasterKey::generate("old", Algorithm::Aes256Gcm).unwrap();
    let new = MasterKey::generate("new", Algorithm::Sm4Gcm).unwrap();
    let before = ring("old", &[&old]);
    let (dek, w_old) = before.new_data_key(uid(9), Algorithm::Aes256Gcm).unwrap();
    let ct = encrypt(&dek, b"110101199003077777", b"people.doc_number").unwrap();

    let during = ring("new", &[&old, &new]);
    let w_new = during.rewrap(uid(9), &w_old).unwrap();
    assert_eq!(w_new.kek_id, "new");
    // Already current: returned unchanged.
    assert_eq!(during.rewrap(uid(9), &w_new).unwrap(), w_new);

    let after = ring("new", &[&new]);
    let dek2 = after.unwrap(uid(9), &w_new).unwrap();
    assert_eq!(
        decrypt(&dek2, &ct, b"people.doc_number").unwrap(),
        b"110101199003077777"
    );
    assert_eq!(
        after.unwrap(uid(9), &w_old).unwrap_err().code(),
        "crypto.unknown_key"
    );
}

#[test]
fn blind_index_key_wrapping_and_rotation() {
    let old = MasterKey::generate("old", Algorithm::Aes256Gcm).unwrap();
    let new = MasterKey::generate("new", Algorithm::Sm4Gcm).unwrap();
    let bik = BlindIndexKey::generate();
    let idx = bik.index("people.phone", "13800138000");

    let w = ring("old", &[&old])
        .wrap_blind_index_key(uid(5), &bik)
        .unwrap();
    assert_eq!(w.bytes.len(), 4 + 12 + 1 + 32 + 16);
    let w2 = ring("new", &[&old, &new]).rewrap(uid(5), &w).unwrap();
    let back = ring("new", &[&new])
        .unwrap_blind_index_key(uid(5), &w2)
        .unwrap();
    assert_eq!(back.index("people.phone", "13800138000"), idx);

    // A blind-index key never unwraps as a data key, nor the reverse.
    let r = ring("old", &[&old]);
    assert_eq!(
        r.unwrap(uid(5), &w).unwrap_err(),
        CryptoError::BadCiphertext
    );
    let (_, wd) = r.new_data_key(uid(6), Algorithm::Aes256Gcm).unwrap();
    assert_eq!(
        r.unwrap_blind_index_key(uid(6), &wd).unwrap_err(),
        CryptoError::BadCiphertext
    );
}

// ---- no key material in output --------------------------------------------

#[test]
fn debug_output_never_shows_key_bytes() {
    let key_bytes = vec![0xA7u8; 32];
    let mk = MasterKey::new("k1", Algorithm::Aes256Gcm, key_bytes.clone()).unwrap();
    let dek = DataKey::from_bytes(uid(3), Algorithm::Aes256Gcm, key_bytes.clone()).unwrap();
    let bik = BlindIndexKey::from_bytes([0xA7; 32]);
    let r = ring("k1", &[&mk]);
    let secret = Secret::new(key_bytes.clone());
    let config = mk.to_config_string();
    let b64 = STANDARD.encode(&key_bytes);

    let outputs = [
        format!("{mk:?}"),
        format!("{mk:#?}"),
        format!("{dek:?}"),
        format!("{bik:?}"),
        format!("{r:?}"),
        format!("{secret:?} {secret}"),
        format!("{config:?} {config}"),
    ];
    for out in &outputs {
        assert!(!out.contains("167"), "{out}");
        assert!(!out.to_lowercase().contains("a7"), "{out}");
        assert!(!out.contains(&b64[..8]), "{out}");
        assert!(out.contains("[redacted]"), "{out}");
    }
    assert!(outputs[0].contains("k1"));
    assert!(outputs[2].contains(&uid(3).to_string()));
}

#[test]
fn data_key_length_is_checked() {
    let err = DataKey::from_bytes(uid(1), Algorithm::Sm4Gcm, vec![0; 32]).unwrap_err();
    assert_eq!(err.code(), "crypto.bad_data_key");
}
