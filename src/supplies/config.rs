//! Configuration of supplies. Each struct has one owner: `SuppliesConfig` reserves & dispatch,
//! `CampaignsConfig` campaigns, `FundsConfig` the fund ledger.

use serde::{Deserialize, Serialize};

/// Reserves: expiry warnings and norms (owner: reserves & dispatch).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SuppliesConfig {
    /// Days before a lot expires that the community's staff are warned (once per lot).
    pub expiry_warn_days: i64,
    /// Reserve norms per 1,000 residents by catalogue item code, for items no node has set a
    /// norm for (a norm set at a node overrides these for every community below it).
    pub default_norms: std::collections::BTreeMap<String, i64>,
}

impl Default for SuppliesConfig {
    fn default() -> Self {
        // Defaults after the community reserve lists (应急管理部《家庭应急物资储备建议清单》
        // 2021 per household of about 3, scaled to 1,000 residents and kept modest): what a
        // community of 1,000 should hold for a first day before the district's stores arrive.
        let norms = [
            ("mask", 1000),
            ("water", 2000),
            ("noodles", 50),
            ("blanket", 20),
            ("tent", 5),
            ("flashlight", 20),
            ("first_aid", 10),
            ("raincoat", 20),
            ("life_jacket", 10),
        ];
        Self {
            expiry_warn_days: 30,
            default_norms: norms.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        }
    }
}

impl SuppliesConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=365).contains(&self.expiry_warn_days) {
            return Err("supplies.expiry_warn_days must be 1–365".into());
        }
        for (code, v) in &self.default_norms {
            if !(0..=1_000_000).contains(v) {
                return Err(format!(
                    "supplies.default_norms.{code} must be 0–1000000 per 1,000 residents"
                ));
            }
        }
        Ok(())
    }
}

/// Distribution campaigns and the reservation rush (owner: campaigns). SCAFFOLD.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignsConfig {
    // rush settings (owner: rush)
    /// Reservations are committed in batches by one writer (one transaction and one fsync for
    /// many requests). `false`: one transaction per request (the benchmark's naive side).
    pub batch: bool,
    /// The most reservations one batch carries.
    pub batch_max: usize,
    /// How long the writer waits for more requests when its queue is short (microseconds;
    /// 0: never waits, takes what is queued).
    pub batch_wait_us: u64,
    // end of rush settings
}

impl Default for CampaignsConfig {
    fn default() -> Self {
        Self {
            // rush settings (owner: rush)
            batch: true,
            batch_max: 512,
            batch_wait_us: 200,
            // end of rush settings
        }
    }
}

impl CampaignsConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.validate_rush()?; // rush settings (owner: rush)
        Ok(())
    }

    // rush settings (owner: rush)
    fn validate_rush(&self) -> Result<(), String> {
        if !(1..=10_000).contains(&self.batch_max) {
            return Err("campaigns.batch_max must be between 1 and 10000".into());
        }
        if self.batch_wait_us > 100_000 {
            return Err("campaigns.batch_wait_us must be at most 100000 (0.1 s)".into());
        }
        Ok(())
    }
    // end of rush settings
}

/// The fund ledger (owner: fund ledger).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FundsConfig {
    /// Allow spending beyond the balance (a community that advances money and is refunded
    /// later). Off by default: such a spending is refused with `fund.insufficient`.
    pub allow_overdraft: bool,
    /// How many months of entries the public page lists (the totals cover everything).
    pub public_months: usize,
}

impl Default for FundsConfig {
    fn default() -> Self {
        Self {
            allow_overdraft: false,
            public_months: 12,
        }
    }
}

impl FundsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=120).contains(&self.public_months) {
            return Err("funds.public_months must be 1 to 120".into());
        }
        Ok(())
    }
}
