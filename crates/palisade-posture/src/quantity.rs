//! Kubernetes resource quantities (`500m`, `1.5Gi`, `2e3`, `128M`).

/// The value of a quantity in base units (cores for CPU, bytes for memory); `None` when the text is
/// not a quantity. Suffixes: binary `Ki Mi Gi Ti Pi Ei`, decimal `n u m k M G T P E`, or a decimal
/// exponent `e<n>` / `E<n>`.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let s = text.trim();
    let number_end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || ((c == '+' || c == '-') && i == 0)))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    if number.is_empty() || !number.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let binary = match suffix {
        "Ki" => Some(1),
        "Mi" => Some(2),
        "Gi" => Some(3),
        "Ti" => Some(4),
        "Pi" => Some(5),
        "Ei" => Some(6),
        _ => None,
    };
    let v = match binary {
        Some(p) => value * 1024f64.powi(p),
        None => {
            let exp: i32 = match suffix {
                "" => 0,
                "n" => -9,
                "u" => -6,
                "m" => -3,
                "k" => 3,
                "M" => 6,
                "G" => 9,
                "T" => 12,
                "P" => 15,
                "E" => 18,
                e if e.starts_with(['e', 'E']) => e[1..].parse().ok()?,
                _ => return None,
            };
            // Divide for negative exponents: 100n is exactly 1e-7, not 100 * 1e-9.
            if exp >= 0 {
                value * 10f64.powi(exp)
            } else {
                value / 10f64.powi(-exp)
            }
        }
    };
    v.is_finite().then_some(v)
}

/// A quantity from a JSON value (limits may be written as bare numbers: `cpu: 2`).
pub fn quantity_of(value: &serde_json::Value) -> Option<f64> {
    match value {
        serde_json::Value::String(s) => parse_quantity(s),
        serde_json::Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_and_exponents() {
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("1.5"), Some(1.5));
        assert_eq!(parse_quantity("1Ki"), Some(1024.0));
        assert_eq!(parse_quantity("512Mi"), Some(512.0 * 1048576.0));
        assert_eq!(parse_quantity("1Gi"), Some(1073741824.0));
        assert_eq!(parse_quantity("128M"), Some(128e6));
        assert_eq!(parse_quantity("1k"), Some(1000.0));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("1E3"), Some(1000.0));
        assert_eq!(parse_quantity("2E"), Some(2e18));
        assert_eq!(parse_quantity("1e-3"), Some(0.001));
        assert_eq!(parse_quantity("+1"), Some(1.0));
        assert_eq!(parse_quantity("100n"), Some(100e-9));
        assert_eq!(parse_quantity(" 250m "), Some(0.25));
        for bad in ["", "m", "1x", "Gi", "1.2.3", "1MB", "1e", "--1", "1 Gi"] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
        assert_eq!(quantity_of(&serde_json::json!(2)), Some(2.0));
        assert_eq!(quantity_of(&serde_json::json!("256Mi")), Some(268435456.0));
        assert_eq!(quantity_of(&serde_json::json!(true)), None);
    }
}
