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

# A number, a suffix: binary, decimal, or a decimal exponent e<n> / E<n>.
quantity_pattern := `^([+-]?[0-9]*\.?[0-9]*)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$`

# 10^n for a whole n (|n| at most 40; larger exponents are not quantities anyone writes).
pow10(n) := 1 {
  n == 0
} else := p {
  n > 0
  n <= 40
  p := product([10 | numbers.range(1, n)[_]])
}

# The value of a quantity in base units (cores, bytes); undefined when it is not a quantity.
# Numbers are taken as they are (limits may be written `cpu: 2`).
value(q) := q {
  is_number(q)
} else := v {
  is_string(q)
  s := trim_space(q)
  m := regex.find_all_string_submatch_n(quantity_pattern, s, 1)[0]
  number_text := m[1]
  regex.match(`[0-9]`, number_text)
  regex.match(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)$`, number_text)
  n := to_number(number_text)
  v := scale(n, m[2])
}

scale(n, suffix) := v {
  v := n * binary_multipliers[suffix]
} else := v {
  e := decimal_exponents[suffix]
  v := apply_exponent(n, e)
} else := v {
  regex.match(`^[eE][+-]?[0-9]+$`, suffix)
  e := to_number(substring(suffix, 1, -1))
  v := apply_exponent(n, e)
}

# Divide for negative exponents: 100n is exactly 1e-7, not 100 * 1e-9.
apply_exponent(n, e) := v {
  e >= 0
  v := n * pow10(e)
} else := v {
  v := n / pow10(0 - e)
}
