//! The emergency fund ledger (应急资金, issue 7) (owner: fund ledger): source kinds, spending
//! categories, amounts in fen. SCAFFOLD.
