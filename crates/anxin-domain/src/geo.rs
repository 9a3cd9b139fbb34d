//! Coordinates and the coordinate systems met in China.
//!
//! The platform stores WGS84. Input arrives in four systems:
//! - WGS84 from GNSS receivers, sensors and most open data;
//! - CGCS2000, the national geodetic system, used in surveying and government GIS. Its realisation
//!   differs from WGS84 by a few centimetres, far below anything this platform measures, so it is
//!   treated as WGS84;
//! - GCJ-02, the obfuscated system every map licensed in mainland China (AMap/Gaode, Tencent)
//!   uses: a non-linear offset of a few hundred metres applied inside China;
//! - BD-09, Baidu's system: a further closed-form distortion of GCJ-02.
//!
//! The GCJ-02 offset is the formula published by open-source reimplementations (known as
//! "eviltransform", reverse-engineered from the official obfuscation), accurate to well under a
//! metre against licensed maps. It has no closed-form inverse: [`to_wgs84`] from GCJ-02 iterates
//! until the forward image of its answer lies within [`INVERSE_TOLERANCE_DEG`] of the input.
//! No crate is used: the published Rust ones are single-maintainer copies of these same 30 lines.

use crate::error::DomainError;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

string_enum! {
    /// Coordinate reference systems accepted at the edge.
    pub enum Crs: "crs" {
        Wgs84 = "wgs84", "WGS84",
        /// Treated as WGS84: the two differ by centimetres.
        Cgcs2000 = "cgcs2000", "CGCS2000",
        Gcj02 = "gcj02", "GCJ-02（高德、腾讯）",
        Bd09 = "bd09", "BD-09（百度）",
    }
}

/// Inverse transforms stop when the forward image of the answer is within this many degrees of
/// the input on both axes: 1e-7° is about 1.1 cm of latitude (less of longitude), two orders below
/// the accuracy of the GCJ-02 formula itself and of any phone GPS.
pub const INVERSE_TOLERANCE_DEG: f64 = 1e-7;

/// Iteration cap. Each fixed-point step shrinks the error about a thousandfold, so two or three
/// steps reach the tolerance anywhere in China; the cap only bounds the work near the edge of
/// [`in_china_box`], where the offset switches off and the steps can oscillate.
const MAX_ITERATIONS: usize = 30;

/// A longitude/latitude pair in degrees, finite and in range. Construct with [`LonLat::new`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LonLatRepr", into = "LonLatRepr")]
pub struct LonLat {
    lon: f64,
    lat: f64,
}

#[derive(Serialize, Deserialize)]
struct LonLatRepr {
    lon: f64,
    lat: f64,
}

impl TryFrom<LonLatRepr> for LonLat {
    type Error = DomainError;
    fn try_from(r: LonLatRepr) -> Result<Self, Self::Error> {
        LonLat::new(r.lon, r.lat)
    }
}

impl From<LonLat> for LonLatRepr {
    fn from(p: LonLat) -> Self {
        LonLatRepr {
            lon: p.lon,
            lat: p.lat,
        }
    }
}

impl LonLat {
    /// Longitude in [-180, 180], latitude in [-90, 90], both finite.
    pub fn new(lon: f64, lat: f64) -> Result<LonLat, DomainError> {
        if !lon.is_finite() || !lat.is_finite() {
            return Err(DomainError::GeoNotFinite);
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(DomainError::GeoOutOfRange { axis: "lon" });
        }
        if !(-90.0..=90.0).contains(&lat) {
            return Err(DomainError::GeoOutOfRange { axis: "lat" });
        }
        Ok(LonLat { lon, lat })
    }

    pub fn lon(self) -> f64 {
        self.lon
    }

    pub fn lat(self) -> f64 {
        self.lat
    }

    /// Internal constructor for transform results, which stay in range for in-range input
    /// (offsets are under 0.01°); clamping guards the poles and the antimeridian anyway.
    fn clamped(lon: f64, lat: f64) -> LonLat {
        LonLat {
            lon: lon.clamp(-180.0, 180.0),
            lat: lat.clamp(-90.0, 90.0),
        }
    }
}

/// Great-circle distance in metres (haversine, mean Earth radius 6 371 008.8 m); good to about
/// 0.5 % anywhere, which is what walking distances and offsets need.
pub fn distance_m(a: LonLat, b: LonLat) -> f64 {
    const R: f64 = 6_371_008.8;
    let (p1, p2) = (a.lat.to_radians(), b.lat.to_radians());
    let dp = p2 - p1;
    let dl = (b.lon - a.lon).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * R * h.sqrt().min(1.0).asin()
}

/// The rectangle GCJ-02 implementations apply the offset in. It includes bits of neighbouring
/// countries and leaves out nothing of mainland China; points outside pass through unchanged.
pub fn in_china_box(p: LonLat) -> bool {
    (72.004..=137.8347).contains(&p.lon) && (0.8293..=55.8271).contains(&p.lat)
}

/// Convert a point given in `crs` to WGS84.
pub fn to_wgs84(crs: Crs, p: LonLat) -> LonLat {
    match crs {
        Crs::Wgs84 | Crs::Cgcs2000 => p,
        Crs::Gcj02 => gcj02_to_wgs84(p),
        Crs::Bd09 => gcj02_to_wgs84(bd09_to_gcj02(p)),
    }
}

/// Convert a WGS84 point to `crs`, e.g. to hand it to a Chinese map SDK.
pub fn from_wgs84(crs: Crs, p: LonLat) -> LonLat {
    match crs {
        Crs::Wgs84 | Crs::Cgcs2000 => p,
        Crs::Gcj02 => wgs84_to_gcj02(p),
        Crs::Bd09 => gcj02_to_bd09(wgs84_to_gcj02(p)),
    }
}

// Krasovsky 1940 ellipsoid, which the GCJ-02 formula is written against.
const KRASOVSKY_A: f64 = 6_378_245.0;
const KRASOVSKY_EE: f64 = 0.006_693_421_622_965_943;

fn offset_lat(x: f64, y: f64) -> f64 {
    let mut r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    r
}

fn offset_lon(x: f64, y: f64) -> f64 {
    let mut r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    r
}

/// The forward GCJ-02 obfuscation; identity outside [`in_china_box`].
fn wgs84_to_gcj02(p: LonLat) -> LonLat {
    if !in_china_box(p) {
        return p;
    }
    let (x, y) = (p.lon - 105.0, p.lat - 35.0);
    let rad_lat = p.lat.to_radians();
    let magic = 1.0 - KRASOVSKY_EE * rad_lat.sin().powi(2);
    let sqrt_magic = magic.sqrt();
    let d_lat = offset_lat(x, y) * 180.0
        / ((KRASOVSKY_A * (1.0 - KRASOVSKY_EE)) / (magic * sqrt_magic) * PI);
    let d_lon = offset_lon(x, y) * 180.0 / (KRASOVSKY_A / sqrt_magic * rad_lat.cos() * PI);
    LonLat::clamped(p.lon + d_lon, p.lat + d_lat)
}

/// Solve `forward(w) = target` by fixed-point steps `w += target - forward(w)`. It converges
/// because the offsets vary slowly: their derivative is far below 1.
fn invert(target: LonLat, start: LonLat, forward: impl Fn(LonLat) -> LonLat) -> LonLat {
    let mut w = start;
    for _ in 0..MAX_ITERATIONS {
        let image = forward(w);
        let (d_lon, d_lat) = (target.lon - image.lon, target.lat - image.lat);
        if d_lon.abs() <= INVERSE_TOLERANCE_DEG / 2.0 && d_lat.abs() <= INVERSE_TOLERANCE_DEG / 2.0
        {
            break;
        }
        w = LonLat::clamped(w.lon + d_lon, w.lat + d_lat);
    }
    w
}

fn gcj02_to_wgs84(p: LonLat) -> LonLat {
    invert(p, p, wgs84_to_gcj02)
}

const BD_X_PI: f64 = PI * 3000.0 / 180.0;

fn gcj02_to_bd09(p: LonLat) -> LonLat {
    let (x, y) = (p.lon, p.lat);
    let z = (x * x + y * y).sqrt() + 0.000_02 * (y * BD_X_PI).sin();
    let theta = y.atan2(x) + 0.000_003 * (x * BD_X_PI).cos();
    LonLat::clamped(z * theta.cos() + 0.0065, z * theta.sin() + 0.006)
}

/// Baidu's published closed-form inverse is only approximate (errors of a few centimetres), so its
/// answer is polished with the same fixed-point steps as GCJ-02 to meet the tolerance.
fn bd09_to_gcj02(p: LonLat) -> LonLat {
    let (x, y) = (p.lon - 0.0065, p.lat - 0.006);
    let z = (x * x + y * y).sqrt() - 0.000_02 * (y * BD_X_PI).sin();
    let theta = y.atan2(x) - 0.000_003 * (x * BD_X_PI).cos();
    let approx = LonLat::clamped(z * theta.cos(), z * theta.sin());
    invert(p, approx, gcj02_to_bd09)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::string_enum::check_round_trip;
    use proptest::prelude::*;

    fn ll(lon: f64, lat: f64) -> LonLat {
        LonLat::new(lon, lat).expect("in range")
    }

    fn close(a: LonLat, b: LonLat, tol: f64) -> bool {
        (a.lon - b.lon).abs() <= tol && (a.lat - b.lat).abs() <= tol
    }

    #[test]
    fn names_round_trip() {
        check_round_trip(Crs::ALL);
    }

    #[test]
    fn validation() {
        assert!(LonLat::new(180.0, -90.0).is_ok());
        let e = |lon, lat| LonLat::new(lon, lat).err().map(|e| e.code());
        assert_eq!(e(180.1, 0.0), Some("geo.out_of_range"));
        assert_eq!(e(0.0, -90.5), Some("geo.out_of_range"));
        assert_eq!(e(f64::NAN, 0.0), Some("geo.not_finite"));
        assert_eq!(e(0.0, f64::INFINITY), Some("geo.not_finite"));
        let json = serde_json::to_string(&ll(104.06, 30.67)).expect("ser");
        assert_eq!(json, r#"{"lon":104.06,"lat":30.67}"#);
        assert!(serde_json::from_str::<LonLat>(r#"{"lon":200.0,"lat":0.0}"#).is_err());
    }

    #[test]
    fn tiananmen_known_pair() {
        let wgs = ll(116.391275, 39.906217);
        let gcj = from_wgs84(Crs::Gcj02, wgs);
        assert!(close(gcj, ll(116.397520, 39.907617), 1e-5), "{gcj:?}");
        assert!(close(to_wgs84(Crs::Gcj02, gcj), wgs, INVERSE_TOLERANCE_DEG));
    }

    #[test]
    fn pairs_published_by_other_implementations() {
        // gcoord's unit tests (JavaScript) and hutool's CoordinateUtilTest (Java): an independent
        // check that the constants and terms above were transcribed right.
        let p = ll(123.0, 45.0);
        assert!(close(
            to_wgs84(Crs::Gcj02, p),
            ll(122.99395597, 44.99804071),
            1e-6
        ));
        assert!(close(gcj02_to_bd09(p), ll(123.00636499, 45.00636899), 1e-6));
        let bd = gcj02_to_bd09(ll(116.404, 39.915));
        assert!(
            close(bd, ll(116.41036949371029, 39.92133699351021), 1e-9),
            "{bd:?}"
        );
        assert!(close(
            bd09_to_gcj02(bd),
            ll(116.404, 39.915),
            INVERSE_TOLERANCE_DEG
        ));
    }

    #[test]
    fn chengdu_offset_magnitude() {
        // Tianfu Square. The GCJ-02 offset in Sichuan is known to be a few hundred metres.
        let p = ll(104.0657, 30.6595);
        let d = distance_m(p, from_wgs84(Crs::Gcj02, p));
        assert!((100.0..=700.0).contains(&d), "{d} m");
    }

    #[test]
    fn cgcs2000_is_wgs84() {
        let p = ll(104.0657, 30.6595);
        assert_eq!(to_wgs84(Crs::Cgcs2000, p), p);
        assert_eq!(from_wgs84(Crs::Cgcs2000, p), p);
    }

    #[test]
    fn distance_is_sane() {
        // One degree of latitude is about 111.2 km.
        let d = distance_m(ll(104.0, 30.0), ll(104.0, 31.0));
        assert!((d - 111_195.0).abs() < 100.0, "{d}");
        assert_eq!(distance_m(ll(1.0, 2.0), ll(1.0, 2.0)), 0.0);
    }

    proptest! {
        #[test]
        fn gcj02_round_trip_in_china(lon in 73.0f64..135.0, lat in 18.0f64..53.5) {
            let p = ll(lon, lat);
            let back = to_wgs84(Crs::Gcj02, from_wgs84(Crs::Gcj02, p));
            prop_assert!(close(back, p, INVERSE_TOLERANCE_DEG), "{p:?} -> {back:?}");
        }

        #[test]
        fn bd09_round_trip_in_china(lon in 73.0f64..135.0, lat in 18.0f64..53.5) {
            let p = ll(lon, lat);
            let back = to_wgs84(Crs::Bd09, from_wgs84(Crs::Bd09, p));
            prop_assert!(close(back, p, INVERSE_TOLERANCE_DEG), "{p:?} -> {back:?}");
        }

        #[test]
        fn offset_is_hundreds_of_metres_around_chengdu(lon in 103.5f64..104.5, lat in 30.3f64..31.0) {
            let p = ll(lon, lat);
            let d = distance_m(p, from_wgs84(Crs::Gcj02, p));
            prop_assert!((100.0..=700.0).contains(&d), "{d} m");
        }

        #[test]
        fn outside_china_unchanged(lon in -180.0f64..72.0, lat in -90.0f64..90.0) {
            let p = ll(lon, lat);
            prop_assert_eq!(from_wgs84(Crs::Gcj02, p), p);
            prop_assert_eq!(to_wgs84(Crs::Gcj02, p), p);
        }
    }
}
