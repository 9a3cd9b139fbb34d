//! Build script: the front-end libraries the web pages use (htmx, Leaflet, ECharts) come from npm at the
//! exact versions pinned in `web/package-lock.json` and are embedded in the binary, so one binary
//! serves its own `/static/…` and nothing is ever fetched from a CDN.
//!
//! When `web/node_modules` is missing (a fresh checkout), this runs `npm ci` in `web/`. When npm
//! is not installed or fails, the build still succeeds: the embedded files are stubs that say so
//! in the browser console, and the server logs a warning at start (`anxin::web::assets_ok`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// (file under web/node_modules, name served under /static/vendor/).
const VENDORED: &[(&str, &str)] = &[
    ("htmx.org/dist/htmx.min.js", "htmx.min.js"),
    ("leaflet/dist/leaflet.js", "leaflet.js"),
    ("leaflet/dist/leaflet.css", "leaflet.css"),
    ("echarts/dist/echarts.min.js", "echarts.min.js"),
];

fn main() {
    println!("cargo:rerun-if-changed=web/package-lock.json");
    println!("cargo:rerun-if-changed=web/node_modules/.package-lock.json");
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    let web = root.join("web");
    let modules = web.join("node_modules");
    let have = |m: &Path| VENDORED.iter().all(|(src, _)| m.join(src).is_file());
    if !have(&modules) {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--omit=dev"])
            .current_dir(&web)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => println!("cargo:warning=`npm ci` in web/ failed ({s}); the web pages will lack htmx and Leaflet"),
            Err(e) => println!("cargo:warning=npm not found ({e}); install Node.js and npm, then rebuild, for htmx and Leaflet"),
        }
    }
    let ok = have(&modules);
    for (src, name) in VENDORED {
        let dest = out.join(name);
        let copied = ok && std::fs::copy(modules.join(src), &dest).is_ok();
        if !copied {
            let stub = format!(
                "/* {name}: web/node_modules was missing when anxin was built; run `npm ci` in web/ and rebuild */\n"
            );
            let body = if name.ends_with(".js") {
                format!("{stub}console.error({:?});\n", stub.trim())
            } else {
                stub
            };
            if let Err(e) = std::fs::write(&dest, body) {
                println!("cargo:warning=cannot write {}: {e}", dest.display());
            }
        }
    }
    if let Err(e) = std::fs::write(out.join("assets_ok.rs"), if ok { "true" } else { "false" }) {
        println!("cargo:warning=cannot write assets_ok.rs: {e}");
    }
}
