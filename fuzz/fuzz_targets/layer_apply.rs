#![no_main]
//! Feeds arbitrary bytes to the layer reader as a layer blob (plain, gzip or zstd by magic) with
//! small caps, twice onto the same view so whiteouts and overwrites meet lower-layer entries.
//! Must never panic, hang or allocate beyond the caps.
use libfuzzer_sys::fuzz_target;
use palisade_core::Package;
use palisade_image::catalog::{CatalogError, Cataloger, FileMeta, Interest};
use palisade_image::layer::apply_layer;
use palisade_image::{ImageFs, Limits};

/// Keeps every small file and analyses executables, to drive every path of the reader.
struct Everything;

impl Cataloger for Everything {
    fn name(&self) -> &'static str {
        "fuzz"
    }
    fn interest(&self, file: &FileMeta<'_>) -> Interest {
        if file.is_executable() {
            Interest::Analyze
        } else if file.size < 4096 {
            Interest::Keep
        } else {
            Interest::Skip
        }
    }
    fn accepts_head(&self, head: &[u8]) -> bool {
        head.first().is_some_and(|b| b & 1 == 0)
    }
    fn analyze(&self, path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
        if data.len() % 3 == 0 {
            return Err(CatalogError::new("fuzz", path, "odd data"));
        }
        Ok(Vec::new())
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_layer_bytes: 4 << 20,
        max_image_bytes: 8 << 20,
        max_layer_entries: 10_000,
        max_kept_file_bytes: 1 << 20,
        max_analyzed_file_bytes: 1 << 20,
        max_total_kept_bytes: 2 << 20,
        ..Limits::default()
    };
    let cats: Vec<Box<dyn Cataloger>> = vec![Box::new(Everything)];
    let mut fs = ImageFs::new(limits.max_symlink_hops);
    for digest in ["sha256:lower", "sha256:upper"] {
        let _ = apply_layer(
            &mut fs,
            digest,
            Box::new(std::io::Cursor::new(data.to_vec())),
            &cats,
            &limits,
        );
    }
    let paths: Vec<String> = fs.iter().map(|(p, _)| p.to_string()).take(64).collect();
    for p in paths {
        let _ = fs.resolve(&p);
        let _ = fs.read(&p);
    }
});
