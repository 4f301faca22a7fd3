//! A tiny program whose only purpose is to carry old dependencies in its cargo-auditable data.
use regex::Regex;
use smallvec::SmallVec;

fn main() {
    let re = Regex::new(r"^\d+$").expect("valid pattern");
    let mut v: SmallVec<[u32; 4]> = SmallVec::new();
    for arg in std::env::args().skip(1) {
        if re.is_match(&arg) {
            v.push(arg.parse().unwrap_or(0));
        }
    }
    println!("{}", v.iter().sum::<u32>());
}
