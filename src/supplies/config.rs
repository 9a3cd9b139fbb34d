//! Configuration of supplies. Each struct has one owner: `SuppliesConfig` reserves & dispatch,
//! `CampaignsConfig` campaigns, `FundsConfig` the fund ledger.

use serde::{Deserialize, Serialize};

/// Reserves: expiry warnings and norms (owner: reserves & dispatch). SCAFFOLD.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SuppliesConfig {}

impl SuppliesConfig {
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Distribution campaigns and the reservation rush (owner: campaigns). SCAFFOLD.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignsConfig {}

impl CampaignsConfig {
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The fund ledger (owner: fund ledger). SCAFFOLD.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FundsConfig {}

impl FundsConfig {
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}
