//! Writes the sample packets of `opte::build::samples` into the seed corpora:
//! `cargo run -p opte-fuzz --example seed_corpus`. Guest-side samples seed `parse-out`,
//! network-side ones `parse-in`; each network sample's inner frame also seeds `parse-out`.
//! A valid request of each kind seeds `control`; sample packets, alone and in sequences,
//! seed `port`.

use opte::build::samples::{self, Side};
use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for s in samples::all() {
        let file = s.name.replace('/', "-");
        match s.side {
            Side::Guest => std::fs::write(root.join("parse-out").join(&file), s.frame())?,
            Side::Network => {
                std::fs::write(root.join("parse-in").join(&file), s.frame())?;
                if let [_, inner] = s.segments.as_slice() {
                    std::fs::write(root.join("parse-out").join(format!("{file}-inner")), inner)?;
                }
            }
        }
    }
    std::fs::create_dir_all(root.join("control"))?;
    for (name, data) in opte_fuzz::control_fixture::seeds() {
        std::fs::write(root.join("control").join(name), data)?;
    }
    std::fs::create_dir_all(root.join("port"))?;
    for (name, data) in opte_fuzz::port::seeds() {
        std::fs::write(root.join("port").join(name), data)?;
    }
    Ok(())
}
