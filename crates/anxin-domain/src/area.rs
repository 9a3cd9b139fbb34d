//! Point-in-area geometry for warnings, and a fast index of points (building locations).
//!
//! An [`Area`] is a union of polygons (WGS84 lon/lat rings, closed) and circles (centre + metres).
//! A point is inside a polygon by the even-odd rule with a half-open crossing test (a point exactly
//! on an edge may fall either way; PostGIS `ST_Contains` excludes the boundary, and on real
//! coordinates ties do not happen); inside a circle when its great-circle (haversine) distance
//! from the centre is at most the radius.
//!
//! [`PointIndex`] is the targeting hot path: points sorted into a uniform grid of cells (about 16
//! points a cell). A polygon query walks the rows of cells under the polygon's bounding box; per
//! row it keeps only the edges that cross the row's band, a cell no edge's box touches is wholly
//! inside or outside (one test of its centre decides all its points), and only the cells on the
//! boundary test their points one by one against the row's few edges. Circles test the points of
//! the cells under their bounding box. The answer is exactly the set a brute-force test of every
//! point gives; the property tests below check that.

use serde::{Deserialize, Serialize};

/// Mean Earth radius (m), as in [`crate::geo::distance_m`].
const EARTH_RADIUS_M: f64 = 6_371_008.8;
/// Metres per degree of latitude (mean).
const M_PER_DEG: f64 = 111_194.93;

/// A circle: centre (WGS84) and radius in metres.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Circle {
    pub lon: f64,
    pub lat: f64,
    pub radius_m: f64,
}

/// A union of polygons and circles, WGS84. Each polygon is one closed outer ring of
/// `[lon, lat]` positions (first = last); holes are not supported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Area {
    #[serde(default)]
    pub polygons: Vec<Vec<[f64; 2]>>,
    #[serde(default)]
    pub circles: Vec<Circle>,
}

impl Area {
    pub fn is_empty(&self) -> bool {
        self.polygons.is_empty() && self.circles.is_empty()
    }

    /// Whether `(lon, lat)` lies in any part of the area.
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        self.polygons.iter().any(|r| ring_contains(r, lon, lat))
            || self.circles.iter().any(|c| circle_contains(c, lon, lat))
    }
}

/// Even-odd test of `(x, y)` against a ring (closed or not: the closing edge is implied).
pub fn ring_contains(ring: &[[f64; 2]], x: f64, y: f64) -> bool {
    let n = ring.len();
    if n < 3 {
        return false;
    }
    let mut inside = false;
    let mut j = n - 1;
    for i in 0..n {
        let [xi, yi] = ring[i];
        let [xj, yj] = ring[j];
        if ((yi > y) != (yj > y)) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Great-circle distance in metres (haversine).
pub fn haversine_m(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

pub fn circle_contains(c: &Circle, lon: f64, lat: f64) -> bool {
    haversine_m(c.lon, c.lat, lon, lat) <= c.radius_m
}

/// The bounding box `(min_lon, min_lat, max_lon, max_lat)` of a circle, with a little margin.
fn circle_bbox(c: &Circle) -> (f64, f64, f64, f64) {
    let dlat = c.radius_m / M_PER_DEG * 1.01 + 1e-9;
    let coslat = c.lat.to_radians().cos().abs().max(1e-6);
    let dlon = (c.radius_m / (M_PER_DEG * coslat) * 1.01 + 1e-9).min(360.0);
    (c.lon - dlon, c.lat - dlat, c.lon + dlon, c.lat + dlat)
}

/// Points in a uniform grid of cells, for area queries. Ids are the caller's (an index into
/// its own list, say).
#[derive(Debug, Clone)]
pub struct PointIndex {
    min_x: f64,
    min_y: f64,
    cell_w: f64,
    cell_h: f64,
    nx: usize,
    ny: usize,
    /// `start[c]..start[c + 1]` are the points of cell `c` (row-major) in `xs`, `ys`, `ids`.
    start: Vec<u32>,
    xs: Vec<f64>,
    ys: Vec<f64>,
    ids: Vec<u32>,
}

/// Target points per cell.
const PER_CELL: f64 = 16.0;

impl PointIndex {
    /// Build the index. Points with a coordinate that is not finite are left out.
    pub fn build(points: &[(u32, f64, f64)]) -> PointIndex {
        let pts: Vec<&(u32, f64, f64)> = points
            .iter()
            .filter(|(_, x, y)| x.is_finite() && y.is_finite())
            .collect();
        let (mut min_x, mut min_y, mut max_x, mut max_y) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for (_, x, y) in &pts {
            min_x = min_x.min(*x);
            min_y = min_y.min(*y);
            max_x = max_x.max(*x);
            max_y = max_y.max(*y);
        }
        if pts.is_empty() {
            (min_x, min_y, max_x, max_y) = (0.0, 0.0, 1.0, 1.0);
        }
        let w = (max_x - min_x).max(1e-9);
        let h = (max_y - min_y).max(1e-9);
        let cells = (pts.len() as f64 / PER_CELL).max(1.0);
        // Square-ish cells in degrees.
        let nx = ((cells * w / h).sqrt().ceil() as usize).clamp(1, 4096);
        let ny = ((cells / nx as f64).ceil() as usize).clamp(1, 4096);
        let cell_w = w / nx as f64 * (1.0 + 1e-12);
        let cell_h = h / ny as f64 * (1.0 + 1e-12);
        let mut idx = PointIndex {
            min_x,
            min_y,
            cell_w,
            cell_h,
            nx,
            ny,
            start: vec![0; nx * ny + 1],
            xs: vec![0.0; pts.len()],
            ys: vec![0.0; pts.len()],
            ids: vec![0; pts.len()],
        };
        let cell_of: Vec<usize> = pts.iter().map(|(_, x, y)| idx.cell(*x, *y)).collect();
        for &c in &cell_of {
            idx.start[c + 1] += 1;
        }
        for c in 0..nx * ny {
            idx.start[c + 1] += idx.start[c];
        }
        let mut fill: Vec<u32> = idx.start[..nx * ny].to_vec();
        for (p, &c) in pts.iter().zip(&cell_of) {
            let at = fill[c] as usize;
            fill[c] += 1;
            idx.xs[at] = p.1;
            idx.ys[at] = p.2;
            idx.ids[at] = p.0;
        }
        idx
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn col(&self, x: f64) -> usize {
        (((x - self.min_x) / self.cell_w).floor().max(0.0) as usize).min(self.nx - 1)
    }
    fn row(&self, y: f64) -> usize {
        (((y - self.min_y) / self.cell_h).floor().max(0.0) as usize).min(self.ny - 1)
    }
    fn cell(&self, x: f64, y: f64) -> usize {
        self.row(y) * self.nx + self.col(x)
    }
    fn range(&self, c: usize) -> std::ops::Range<usize> {
        self.start[c] as usize..self.start[c + 1] as usize
    }

    /// The ids of the points inside `area`, each once, in no particular order.
    pub fn query(&self, area: &Area) -> Vec<u32> {
        let mut out = Vec::new();
        for ring in &area.polygons {
            self.query_ring(ring, &mut out);
        }
        for c in &area.circles {
            self.query_circle(c, &mut out);
        }
        if area.polygons.len() + area.circles.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
        out
    }

    fn query_ring(&self, ring: &[[f64; 2]], out: &mut Vec<u32>) {
        if ring.len() < 3 || self.is_empty() {
            return;
        }
        // Edges as (x0, y0, x1, y1) with the implied closing edge.
        let n = ring.len();
        let edges: Vec<[f64; 4]> = (0..n)
            .map(|i| {
                let a = ring[(i + n - 1) % n];
                let b = ring[i];
                [a[0], a[1], b[0], b[1]]
            })
            .filter(|e| e[0] != e[2] || e[1] != e[3])
            .collect();
        let (mut bx0, mut by0, mut bx1, mut by1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for p in ring {
            bx0 = bx0.min(p[0]);
            by0 = by0.min(p[1]);
            bx1 = bx1.max(p[0]);
            by1 = by1.max(p[1]);
        }
        let max_x = self.min_x + self.cell_w * self.nx as f64;
        let max_y = self.min_y + self.cell_h * self.ny as f64;
        if bx1 < self.min_x || by1 < self.min_y || bx0 > max_x || by0 > max_y {
            return;
        }
        let (c0, c1) = (self.col(bx0), self.col(bx1));
        let (r0, r1) = (self.row(by0), self.row(by1));
        // A margin for cell edges: a point is filed by floor(), the cell box by multiplication.
        let eps_x = self.cell_w * 1e-9;
        let eps_y = self.cell_h * 1e-9;
        let mut band: Vec<[f64; 4]> = Vec::with_capacity(edges.len());
        for r in r0..=r1 {
            let y0 = self.min_y + r as f64 * self.cell_h - eps_y;
            let y1 = y0 + self.cell_h + 2.0 * eps_y;
            band.clear();
            band.extend(
                edges
                    .iter()
                    .filter(|e| e[1].max(e[3]) >= y0 && e[1].min(e[3]) <= y1),
            );
            for c in c0..=c1 {
                let cell = r * self.nx + c;
                let range = self.range(cell);
                if range.is_empty() {
                    continue;
                }
                let x0 = self.min_x + c as f64 * self.cell_w - eps_x;
                let x1 = x0 + self.cell_w + 2.0 * eps_x;
                let touched = band
                    .iter()
                    .any(|e| e[0].max(e[2]) >= x0 && e[0].min(e[2]) <= x1);
                if !touched {
                    // No boundary in the cell: its points share their centre's side.
                    if crossing_parity(&band, (x0 + x1) / 2.0, (y0 + y1) / 2.0) {
                        out.extend_from_slice(&self.ids[range]);
                    }
                    continue;
                }
                for k in range {
                    if crossing_parity(&band, self.xs[k], self.ys[k]) {
                        out.push(self.ids[k]);
                    }
                }
            }
        }
    }

    fn query_circle(&self, circle: &Circle, out: &mut Vec<u32>) {
        if self.is_empty() || circle.radius_m.is_nan() || circle.radius_m < 0.0 {
            return;
        }
        let (bx0, by0, bx1, by1) = circle_bbox(circle);
        let max_x = self.min_x + self.cell_w * self.nx as f64;
        let max_y = self.min_y + self.cell_h * self.ny as f64;
        if bx1 < self.min_x || by1 < self.min_y || bx0 > max_x || by0 > max_y {
            return;
        }
        for r in self.row(by0)..=self.row(by1) {
            for c in self.col(bx0)..=self.col(bx1) {
                for k in self.range(r * self.nx + c) {
                    if circle_contains(circle, self.xs[k], self.ys[k]) {
                        out.push(self.ids[k]);
                    }
                }
            }
        }
    }
}

/// Even-odd over a set of edges: the edges of a ring that cross the horizontal line through `y`
/// must all be present (a row's band holds every edge that reaches into it).
#[inline]
fn crossing_parity(edges: &[[f64; 4]], x: f64, y: f64) -> bool {
    let mut inside = false;
    for e in edges {
        let (xi, yi, xj, yj) = (e[2], e[3], e[0], e[1]);
        if ((yi > y) != (yj > y)) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference: winding number, a different rule that agrees with even-odd on simple rings.
    fn winding(ring: &[[f64; 2]], x: f64, y: f64) -> bool {
        let n = ring.len();
        let mut wn = 0i32;
        for i in 0..n {
            let a = ring[i];
            let b = ring[(i + 1) % n];
            let cross = (b[0] - a[0]) * (y - a[1]) - (x - a[0]) * (b[1] - a[1]);
            if a[1] <= y {
                if b[1] > y && cross > 0.0 {
                    wn += 1;
                }
            } else if b[1] <= y && cross < 0.0 {
                wn -= 1;
            }
        }
        wn != 0
    }

    /// A star-shaped (so simple) ring around a centre from angles and radii, closed.
    fn star(cx: f64, cy: f64, spokes: &[(f64, f64)]) -> Vec<[f64; 2]> {
        let mut s: Vec<(f64, f64)> = spokes.to_vec();
        s.sort_by(|a, b| a.0.total_cmp(&b.0));
        s.dedup_by(|a, b| (a.0 - b.0).abs() < 1e-6);
        let mut ring: Vec<[f64; 2]> = s
            .iter()
            .map(|(a, r)| [cx + r * a.cos(), cy + r * a.sin()])
            .collect();
        ring.push(ring[0]);
        ring
    }

    fn brute(points: &[(u32, f64, f64)], area: &Area) -> Vec<u32> {
        let mut v: Vec<u32> = points
            .iter()
            .filter(|(_, x, y)| area.contains(*x, *y))
            .map(|p| p.0)
            .collect();
        v.sort_unstable();
        v
    }

    fn points_strategy() -> impl Strategy<Value = Vec<(f64, f64)>> {
        prop::collection::vec((103.9f64..104.3, 30.5f64..30.8), 0..2000)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn even_odd_agrees_with_winding_on_simple_rings(
            spokes in prop::collection::vec((0.0f64..std::f64::consts::TAU, 0.001f64..0.2), 3..40),
            pts in prop::collection::vec((103.8f64..104.4, 30.4f64..30.9), 1..300),
        ) {
            let ring = star(104.1, 30.65, &spokes);
            prop_assume!(ring.len() >= 4);
            for (x, y) in pts {
                prop_assert_eq!(ring_contains(&ring, x, y), winding(&ring, x, y));
            }
        }

        #[test]
        fn index_matches_brute_force_on_polygons(
            pts in points_strategy(),
            spokes in prop::collection::vec((0.0f64..std::f64::consts::TAU, 0.001f64..0.3), 3..40),
            cx in 103.9f64..104.3, cy in 30.5f64..30.8,
        ) {
            let points: Vec<(u32, f64, f64)> =
                pts.iter().enumerate().map(|(i, (x, y))| (i as u32, *x, *y)).collect();
            let idx = PointIndex::build(&points);
            let ring = star(cx, cy, &spokes);
            let area = Area { polygons: vec![ring], circles: vec![] };
            let mut got = idx.query(&area);
            got.sort_unstable();
            prop_assert_eq!(got, brute(&points, &area));
        }

        #[test]
        fn index_matches_brute_force_on_any_ring_and_circles(
            pts in points_strategy(),
            verts in prop::collection::vec((103.85f64..104.35, 30.45f64..30.85), 3..30),
            circle in (103.9f64..104.3, 30.5f64..30.8, 0.0f64..20_000.0),
        ) {
            let points: Vec<(u32, f64, f64)> =
                pts.iter().enumerate().map(|(i, (x, y))| (i as u32, *x, *y)).collect();
            let idx = PointIndex::build(&points);
            // Self-intersecting rings too: even-odd either way.
            let ring: Vec<[f64; 2]> = verts.iter().map(|(x, y)| [*x, *y]).collect();
            let area = Area {
                polygons: vec![ring],
                circles: vec![Circle { lon: circle.0, lat: circle.1, radius_m: circle.2 }],
            };
            let got = idx.query(&area);
            prop_assert_eq!(got, brute(&points, &area));
        }
    }

    #[test]
    fn square_and_circle() {
        let sq = vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]];
        assert!(ring_contains(&sq, 0.5, 0.5));
        assert!(!ring_contains(&sq, 1.5, 0.5));
        let c = Circle {
            lon: 104.0,
            lat: 30.0,
            radius_m: 1000.0,
        };
        assert!(circle_contains(&c, 104.0, 30.008));
        assert!(!circle_contains(&c, 104.0, 30.01));
        let d = haversine_m(104.0, 30.0, 104.0, 31.0);
        assert!((d - 111_195.0).abs() < 10.0, "{d}");
    }

    #[test]
    fn empty_index_and_far_polygon() {
        let idx = PointIndex::build(&[]);
        assert!(idx.query(&Area::default()).is_empty());
        let idx = PointIndex::build(&[(7, 104.0, 30.0)]);
        let far = vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]];
        let a = Area {
            polygons: vec![far],
            circles: vec![],
        };
        assert!(idx.query(&a).is_empty());
        let near = Area {
            polygons: vec![],
            circles: vec![Circle {
                lon: 104.0,
                lat: 30.0,
                radius_m: 1.0,
            }],
        };
        assert_eq!(idx.query(&near), vec![7]);
    }
}

/// The targeting benchmark's Rust half (`bench/targeting/run` drives it): seeded random points in
/// the Chengdu area and seeded random 40-vertex polygons; times the index build and each query,
/// and writes the points, the polygons (WKT) and each polygon's id set for the PostGIS half.
/// Run: `ANXIN_TARGETING_OUT=dir cargo test --release -p anxin-domain -- --ignored targeting_bench`.
#[cfg(test)]
mod bench {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::io::Write;

    #[test]
    #[ignore = "benchmark: run by bench/targeting/run"]
    fn targeting_bench() {
        let out = std::path::PathBuf::from(
            std::env::var("ANXIN_TARGETING_OUT").expect("ANXIN_TARGETING_OUT"),
        );
        let n: usize = std::env::var("ANXIN_TARGETING_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
        let polys: usize = std::env::var("ANXIN_TARGETING_POLYS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20);
        let seed: u64 = std::env::var("ANXIN_TARGETING_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2026);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        // 成都 central area: 103.6–104.5 E, 30.3–31.0 N.
        let points: Vec<(u32, f64, f64)> = (0..n)
            .map(|i| {
                // Rounded as written to the CSV, so both sides hold the same doubles.
                let x: f64 = format!("{:.9}", rng.gen_range(103.6..104.5))
                    .parse()
                    .unwrap();
                let y: f64 = format!("{:.9}", rng.gen_range(30.3..31.0)).parse().unwrap();
                (i as u32, x, y)
            })
            .collect();
        let mut f = std::io::BufWriter::new(std::fs::File::create(out.join("points.csv")).unwrap());
        for (i, x, y) in &points {
            writeln!(f, "{i},{x:.9},{y:.9}").unwrap();
        }
        f.flush().unwrap();
        let t0 = std::time::Instant::now();
        let idx = PointIndex::build(&points);
        let build = t0.elapsed();
        let mut pf =
            std::io::BufWriter::new(std::fs::File::create(out.join("polygons.csv")).unwrap());
        let mut times = Vec::with_capacity(polys);
        for k in 0..polys {
            let cx = rng.gen_range(103.85..104.25);
            let cy = rng.gen_range(30.5..30.8);
            let r = rng.gen_range(0.12..0.26);
            let mut angles: Vec<f64> = (0..40)
                .map(|_| rng.gen_range(0.0..std::f64::consts::TAU))
                .collect();
            angles.sort_by(f64::total_cmp);
            let mut ring: Vec<[f64; 2]> = angles
                .iter()
                .map(|a| {
                    let rr = r * rng.gen_range(0.6..1.0);
                    let x = cx + rr * a.cos();
                    let y = cy + rr * a.sin();
                    // Round as written to the WKT, so both sides test the same ring.
                    [
                        format!("{x:.9}").parse().unwrap(),
                        format!("{y:.9}").parse().unwrap(),
                    ]
                })
                .collect();
            ring.push(ring[0]);
            let wkt: Vec<String> = ring
                .iter()
                .map(|p| format!("{:.9} {:.9}", p[0], p[1]))
                .collect();
            writeln!(pf, "{k}\tPOLYGON(({}))", wkt.join(", ")).unwrap();
            let area = Area {
                polygons: vec![ring],
                circles: vec![],
            };
            // Best of three, like the PostGIS side.
            let mut el = std::time::Duration::MAX;
            let mut got = Vec::new();
            for _ in 0..3 {
                let t = std::time::Instant::now();
                got = idx.query(&area);
                el = el.min(t.elapsed());
            }
            got.sort_unstable();
            times.push((el.as_secs_f64() * 1000.0, got.len()));
            let mut sf = std::io::BufWriter::new(
                std::fs::File::create(out.join(format!("index_{k}.txt"))).unwrap(),
            );
            for id in got {
                writeln!(sf, "{id}").unwrap();
            }
        }
        pf.flush().unwrap();
        let mut line = format!(
            "{{\"n\":{n},\"build_ms\":{:.3},\"queries\":[",
            build.as_secs_f64() * 1000.0
        );
        for (i, (ms, c)) in times.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(&format!("{{\"ms\":{ms:.3},\"count\":{c}}}"));
        }
        line.push_str("]}");
        std::fs::write(out.join("index.json"), &line).unwrap();
        println!("{line}");
    }
}
