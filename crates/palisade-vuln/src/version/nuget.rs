//! NuGet versions: up to four numeric parts (`1.2.3.4`, missing parts are zero), SemVer 2.0
//! prerelease precedence with labels compared case-insensitively, build metadata ignored.

use super::semver::SemVersion;
use super::{VersionError, VersionScheme};
use std::cmp::Ordering;

/// Orders two NuGet versions.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let mut va = SemVersion::parse(a, VersionScheme::NuGet)?;
    let vb = SemVersion::parse(b, VersionScheme::NuGet)?;
    va.ignore_case = true;
    Ok(va.cmp(&vb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    fn c(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap()
    }

    #[test]
    fn nuget_ordering() {
        assert_eq!(c("1.0.0-BETA", "1.0.0-beta"), Equal);
        assert_eq!(c("1.0.0-Alpha", "1.0.0-beta"), Less);
        assert_eq!(c("1.0", "1.0.0.0"), Equal);
        assert_eq!(c("1.0.0.1", "1.0.0"), Greater);
        assert_eq!(c("4.3.0", "4.3.0-preview1"), Greater);
        assert_eq!(c("1.0.0+abc", "1.0.0"), Equal);
        assert_eq!(c("1.0.0-rc.2", "1.0.0-RC.10"), Less);
    }

    #[test]
    fn invalid() {
        assert!(compare("1.0.0.0.0", "1").is_err());
        assert!(compare("1.0-", "1").is_err());
        assert!(compare("x", "1").is_err());
    }
}
