//! Numbers of an answer: exact rationals of any size, or decimals written
//! with a fractional part (compared after rounding, as graders do).

use std::fmt;

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

#[derive(Debug, Clone, PartialEq)]
pub enum Number {
    /// Integers and fractions, exactly.
    Rational(BigRational),
    /// A decimal written with a fractional part (`0.333`, `1000.0`).
    Float(f64),
}

impl Number {
    pub fn int(value: i64) -> Self {
        Self::Rational(BigRational::from_integer(BigInt::from(value)))
    }

    pub fn ratio(numer: i64, denom: i64) -> Self {
        Self::Rational(BigRational::new(BigInt::from(numer), BigInt::from(denom)))
    }

    /// Parses `123`, `-4`, `0.25`, `.5`, `1e3`, `2.5E-4`. Decimals become
    /// [`Number::Float`]; integers stay exact whatever their size.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(i) => (&text[..i], Some(text[i + 1..].parse::<i32>().ok()?)),
            None => (text, None),
        };
        let (negative, digits) = match mantissa.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return None;
        }
        if digits.matches('.').count() > 1 || digits == "." {
            return None;
        }
        if digits.contains('.') || exponent.is_some_and(|e| e < 0) {
            let value: f64 = format!(
                "{}{}{}",
                if negative { "-" } else { "" },
                if digits.starts_with('.') { "0" } else { "" },
                digits
            )
            .parse()
            .ok()?;
            let value = value * 10f64.powi(exponent.unwrap_or(0));
            return value.is_finite().then_some(Self::Float(value));
        }
        let mut integer: BigInt = digits.parse().ok()?;
        if let Some(e) = exponent {
            if e > 400 {
                return None;
            }
            integer *= BigInt::from(10).pow(e as u32);
        }
        if negative {
            integer = -integer;
        }
        Some(Self::Rational(BigRational::from_integer(integer)))
    }

    pub fn to_f64(&self) -> f64 {
        match self {
            Self::Rational(r) => rational_to_f64(r),
            Self::Float(f) => *f,
        }
    }

    pub fn as_rational(&self) -> Option<&BigRational> {
        match self {
            Self::Rational(r) => Some(r),
            Self::Float(_) => None,
        }
    }

    pub fn is_float(&self) -> bool {
        matches!(self, Self::Float(_))
    }

    pub fn is_zero(&self) -> bool {
        match self {
            Self::Rational(r) => r.is_zero(),
            Self::Float(f) => *f == 0.0,
        }
    }

    pub fn is_one(&self) -> bool {
        match self {
            Self::Rational(r) => r.is_one(),
            Self::Float(f) => *f == 1.0,
        }
    }

    pub fn neg(&self) -> Self {
        match self {
            Self::Rational(r) => Self::Rational(-r),
            Self::Float(f) => Self::Float(-f),
        }
    }
}

/// A rational as the nearest f64, also when numerator and denominator
/// overflow f64 on their own.
pub fn rational_to_f64(r: &BigRational) -> f64 {
    if let (Some(n), Some(d)) = (r.numer().to_f64(), r.denom().to_f64())
        && n.is_finite()
        && d.is_finite()
        && d != 0.0
    {
        return n / d;
    }
    let shift = r.numer().bits() as i64 - r.denom().bits() as i64;
    let scaled = if shift > 0 {
        r / BigRational::from_integer(BigInt::one() << (shift as usize))
    } else {
        r * BigRational::from_integer(BigInt::one() << ((-shift) as usize))
    };
    let base =
        scaled.numer().to_f64().unwrap_or(f64::NAN) / scaled.denom().to_f64().unwrap_or(f64::NAN);
    base * 2f64.powi(shift.clamp(-2000, 2000) as i32)
}

/// Rounds to `digits` decimal places, half away from zero.
pub fn round_to(value: f64, digits: u32) -> f64 {
    let scale = 10f64.powi(digits as i32);
    let scaled = value * scale;
    if !scaled.is_finite() {
        return value;
    }
    scaled.round() / scale
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rational(r) if r.is_integer() => write!(f, "{}", r.numer()),
            Self::Rational(r) => write!(f, "{}/{}", r.numer(), r.denom()),
            Self::Float(x) => write!(f, "{x}"),
        }
    }
}

/// `base ^ exponent` exactly, for integer exponents of moderate size.
pub fn rational_pow(base: &BigRational, exponent: &BigRational) -> Option<BigRational> {
    if !exponent.is_integer() {
        return None;
    }
    let e = exponent.to_integer().to_i64()?;
    if e.abs() > 4096 || (base.numer().bits() as i64).saturating_mul(e.abs()) > 1 << 20 {
        return None;
    }
    if e < 0 && base.is_zero() {
        return None;
    }
    let magnitude = num_traits::pow(base.clone(), e.unsigned_abs() as usize);
    Some(if e < 0 { magnitude.recip() } else { magnitude })
}

pub fn is_negative(r: &BigRational) -> bool {
    r.is_negative()
}
