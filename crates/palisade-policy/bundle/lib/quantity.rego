# Palisade bundle library: Kubernetes resource quantities (`500m`, `1.5Gi`, `2e3`, `128M`), read
# the way posture reads them (crates/palisade-posture/src/quantity.rs).
package lib.palisade.quantity

binary_multipliers := {
  "Ki": 1024,
  "Mi": 1048576,
  "Gi": 1073741824,
  "Ti": 1099511627776,
  "Pi": 1125899906842624,
  "Ei": 1152921504606846976,
}

decimal_exponents := {"": 0, "n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}

# 10^n for a whole n (|n| at most 40; larger exponents are not quantities anyone writes).
pow10(n) := 1 {
  n == 0
} else := p {
  n > 0
  n <= 40
  p := product([10 | numbers.range(1, n)[_]])
}

# The value of a quantity in base units (cores, bytes); undefined when it is not a quantity.
# Numbers are taken as they are (limits may be written `cpu: 2`). String functions only: this
# runs for every container at admission.
value(q) := q {
  is_number(q)
} else := v {
  is_string(q)
  s := trim_space(q)
  body := unsigned(s)
  # The suffix starts at the first character that is neither a digit nor a dot.
  suffix := trim_left(body, "0123456789.")
  digits := substring(body, 0, count(body) - count(suffix))
  is_decimal(digits)
  magnitude := scale(to_number(canonical(digits)), suffix)
  v := signed(s, magnitude)
}

# Without its one leading sign.
unsigned(s) := substring(s, 1, -1) {
  startswith(s, "+")
} else := substring(s, 1, -1) {
  startswith(s, "-")
} else := s

signed(s, m) := 0 - m {
  startswith(s, "-")
} else := m

# At least one digit, at most one dot.
is_decimal(digits) {
  without_dots := replace(digits, ".", "")
  count(without_dots) > 0
  count(digits) - count(without_dots) <= 1
}

# `1.` and `.5` as every number parser reads them.
canonical(digits) := concat("", ["0", digits, "0"]) {
  startswith(digits, ".")
  endswith(digits, ".")
} else := concat("", ["0", digits]) {
  startswith(digits, ".")
} else := concat("", [digits, "0"]) {
  endswith(digits, ".")
} else := digits

scale(n, suffix) := v {
  v := n * binary_multipliers[suffix]
} else := v {
  e := decimal_exponents[suffix]
  v := apply_exponent(n, e)
} else := v {
  startswith(suffix, "e")
  v := apply_exponent(n, exponent(substring(suffix, 1, -1)))
} else := v {
  startswith(suffix, "E")
  v := apply_exponent(n, exponent(substring(suffix, 1, -1)))
}

# The integer after e/E: an optional sign and at least one digit.
exponent(text) := e {
  digits := unsigned(text)
  count(digits) > 0
  trim_left(digits, "0123456789") == ""
  e := to_number(text)
}

# Divide for negative exponents: 100n is exactly 1e-7, not 100 * 1e-9.
apply_exponent(n, e) := v {
  e >= 0
  v := n * pow10(e)
} else := v {
  v := n / pow10(0 - e)
}
