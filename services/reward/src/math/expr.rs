//! The parsed form of an answer: numbers, symbols, arithmetic, functions,
//! and the structures answers take (tuples, sets, intervals, matrices,
//! relations).

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use num_complex::Complex64;
use num_rational::BigRational;
use num_traits::{ToPrimitive, Zero};

use super::number::{Number, rational_pow};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Constant {
    Pi,
    E,
    I,
    Infinity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Func {
    Sin,
    Cos,
    Tan,
    Sec,
    Csc,
    Cot,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    /// Natural logarithm; with two arguments the second is the base.
    Log,
    Exp,
    Abs,
    Floor,
    Ceil,
    Factorial,
    Binom,
    Min,
    Max,
    Gcd,
    Lcm,
}

impl Func {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sin => "sin",
            Self::Cos => "cos",
            Self::Tan => "tan",
            Self::Sec => "sec",
            Self::Csc => "csc",
            Self::Cot => "cot",
            Self::Asin => "asin",
            Self::Acos => "acos",
            Self::Atan => "atan",
            Self::Sinh => "sinh",
            Self::Cosh => "cosh",
            Self::Tanh => "tanh",
            Self::Log => "log",
            Self::Exp => "exp",
            Self::Abs => "Abs",
            Self::Floor => "floor",
            Self::Ceil => "ceiling",
            Self::Factorial => "factorial",
            Self::Binom => "binomial",
            Self::Min => "Min",
            Self::Max => "Max",
            Self::Gcd => "gcd",
            Self::Lcm => "lcm",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RelOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `x \in S`.
    In,
}

impl RelOp {
    /// The same relation written the other way round (`a < b` ⇔ `b > a`).
    pub fn flipped(self) -> Self {
        match self {
            Self::Lt => Self::Gt,
            Self::Gt => Self::Lt,
            Self::Le => Self::Ge,
            Self::Ge => Self::Le,
            other => other,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::In => "in",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Aggregate {
    Sum,
    Product,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(Number),
    Sym(String),
    Const(Constant),
    Add(Vec<Expr>),
    Mul(Vec<Expr>),
    Pow(Box<Expr>, Box<Expr>),
    Func(Func, Vec<Expr>),
    /// An undefined function applied to arguments: `f(x)`, `F_{n-1}`.
    Apply(String, Vec<Expr>),
    /// `\sum_{var=lo}^{hi} body` and `\prod`.
    Aggregate {
        kind: Aggregate,
        var: String,
        lo: Box<Expr>,
        hi: Box<Expr>,
        body: Box<Expr>,
    },
    Tuple(Vec<Expr>),
    /// A finite set, in the order written.
    Set(Vec<Expr>),
    Interval {
        lo: Box<Expr>,
        hi: Box<Expr>,
        lo_open: bool,
        hi_open: bool,
    },
    Union(Vec<Expr>),
    Matrix(Vec<Vec<Expr>>),
    /// `a op b op c …`: terms.len() == ops.len() + 1.
    Relation(Vec<Expr>, Vec<RelOp>),
    /// `±x`, expanded into a set of values before comparison.
    PlusMinus(Box<Expr>),
}

pub fn num(n: i64) -> Expr {
    Expr::Num(Number::int(n))
}

pub fn neg(e: Expr) -> Expr {
    match e {
        Expr::Num(n) => Expr::Num(n.neg()),
        other => Expr::Mul(vec![num(-1), other]),
    }
}

pub fn recip(e: Expr) -> Expr {
    Expr::Pow(Box::new(e), Box::new(num(-1)))
}

pub fn percent(e: Expr) -> Expr {
    Expr::Mul(vec![e, Expr::Num(Number::ratio(1, 100))])
}

impl Expr {
    pub fn is_relation(&self) -> bool {
        matches!(self, Self::Relation(..))
    }

    /// True for sets, intervals, unions and tuples.
    pub fn is_collection(&self) -> bool {
        matches!(
            self,
            Self::Set(_) | Self::Interval { .. } | Self::Union(_) | Self::Tuple(_)
        )
    }

    /// A number, or a number written as a percentage.
    pub fn as_number(&self) -> Option<(&Number, bool)> {
        match self {
            Self::Num(n) => Some((n, false)),
            Self::Mul(args) if args.len() == 2 => match (&args[0], &args[1]) {
                (Self::Num(n), Self::Num(Number::Rational(r)))
                    if *r == BigRational::new(1.into(), 100.into()) =>
                {
                    Some((n, true))
                }
                _ => None,
            },
            _ => None,
        }
    }

    pub fn contains_float(&self) -> bool {
        let mut found = false;
        self.visit(&mut |e| found |= matches!(e, Expr::Num(Number::Float(_))));
        found
    }

    /// Calls `f` on this node and every node below it.
    pub fn visit(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match self {
            Self::Num(_) | Self::Sym(_) | Self::Const(_) => {}
            Self::Add(xs)
            | Self::Mul(xs)
            | Self::Func(_, xs)
            | Self::Apply(_, xs)
            | Self::Tuple(xs)
            | Self::Set(xs)
            | Self::Union(xs)
            | Self::Relation(xs, _) => xs.iter().for_each(|x| x.visit(f)),
            Self::Pow(a, b) => {
                a.visit(f);
                b.visit(f);
            }
            Self::Aggregate { lo, hi, body, .. } => {
                lo.visit(f);
                hi.visit(f);
                body.visit(f);
            }
            Self::Interval { lo, hi, .. } => {
                lo.visit(f);
                hi.visit(f);
            }
            Self::Matrix(rows) => rows.iter().flatten().for_each(|x| x.visit(f)),
            Self::PlusMinus(x) => x.visit(f),
        }
    }

    /// Names of the free variables.
    pub fn free_symbols(&self) -> BTreeSet<String> {
        let mut symbols = BTreeSet::new();
        let mut bound = BTreeSet::new();
        self.collect_symbols(&mut symbols, &mut bound);
        symbols
    }

    fn collect_symbols(&self, out: &mut BTreeSet<String>, bound: &mut BTreeSet<String>) {
        match self {
            Self::Sym(s) => {
                if !bound.contains(s) {
                    out.insert(s.clone());
                }
            }
            Self::Aggregate {
                var, lo, hi, body, ..
            } => {
                lo.collect_symbols(out, bound);
                hi.collect_symbols(out, bound);
                let fresh = bound.insert(var.clone());
                body.collect_symbols(out, bound);
                if fresh {
                    bound.remove(var);
                }
            }
            Self::Num(_) | Self::Const(_) => {}
            Self::Add(xs)
            | Self::Mul(xs)
            | Self::Func(_, xs)
            | Self::Apply(_, xs)
            | Self::Tuple(xs)
            | Self::Set(xs)
            | Self::Union(xs)
            | Self::Relation(xs, _) => xs.iter().for_each(|x| x.collect_symbols(out, bound)),
            Self::Pow(a, b) => {
                a.collect_symbols(out, bound);
                b.collect_symbols(out, bound);
            }
            Self::Interval { lo, hi, .. } => {
                lo.collect_symbols(out, bound);
                hi.collect_symbols(out, bound);
            }
            Self::Matrix(rows) => rows
                .iter()
                .flatten()
                .for_each(|x| x.collect_symbols(out, bound)),
            Self::PlusMinus(x) => x.collect_symbols(out, bound),
        }
    }

    /// Replaces symbols by other expressions.
    pub fn substitute(&self, map: &HashMap<String, Expr>) -> Expr {
        self.map(&|e| match e {
            Expr::Sym(s) => map.get(s).cloned(),
            _ => None,
        })
    }

    /// Rebuilds the tree bottom-up, replacing every node for which `f` gives
    /// a replacement (children are not visited again).
    pub fn map(&self, f: &dyn Fn(&Expr) -> Option<Expr>) -> Expr {
        if let Some(replaced) = f(self) {
            return replaced;
        }
        let all = |xs: &[Expr]| xs.iter().map(|x| x.map(f)).collect::<Vec<_>>();
        match self {
            Self::Num(_) | Self::Sym(_) | Self::Const(_) => self.clone(),
            Self::Add(xs) => Self::Add(all(xs)),
            Self::Mul(xs) => Self::Mul(all(xs)),
            Self::Func(g, xs) => Self::Func(*g, all(xs)),
            Self::Apply(n, xs) => Self::Apply(n.clone(), all(xs)),
            Self::Tuple(xs) => Self::Tuple(all(xs)),
            Self::Set(xs) => Self::Set(all(xs)),
            Self::Union(xs) => Self::Union(all(xs)),
            Self::Relation(xs, ops) => Self::Relation(all(xs), ops.clone()),
            Self::Pow(a, b) => Self::Pow(Box::new(a.map(f)), Box::new(b.map(f))),
            Self::Aggregate {
                kind,
                var,
                lo,
                hi,
                body,
            } => Self::Aggregate {
                kind: *kind,
                var: var.clone(),
                lo: Box::new(lo.map(f)),
                hi: Box::new(hi.map(f)),
                body: Box::new(body.map(f)),
            },
            Self::Interval {
                lo,
                hi,
                lo_open,
                hi_open,
            } => Self::Interval {
                lo: Box::new(lo.map(f)),
                hi: Box::new(hi.map(f)),
                lo_open: *lo_open,
                hi_open: *hi_open,
            },
            Self::Matrix(rows) => Self::Matrix(rows.iter().map(|r| all(r)).collect()),
            Self::PlusMinus(x) => Self::PlusMinus(Box::new(x.map(f))),
        }
    }

    /// Expands every `±` into the set of values it stands for (at most 16).
    pub fn expand_plus_minus(&self) -> Vec<Expr> {
        let mut count = 0;
        self.visit(&mut |e| count += usize::from(matches!(e, Expr::PlusMinus(_))));
        if count == 0 {
            return vec![self.clone()];
        }
        let count = count.min(4);
        (0..1usize << count)
            .map(|signs| {
                let index = std::cell::Cell::new(0);
                self.map(&|e| match e {
                    Expr::PlusMinus(x) => {
                        let i = index.get();
                        index.set(i + 1);
                        let inner = Expr::PlusMinus(x.clone());
                        let value = match inner {
                            Expr::PlusMinus(x) => *x,
                            _ => unreachable!("constructed above"),
                        };
                        Some(if i < 4 && signs & (1 << i) != 0 {
                            neg(value)
                        } else {
                            value
                        })
                    }
                    _ => None,
                })
            })
            .collect()
    }

    /// The exact rational value, when the expression is built from rationals
    /// with `+ - × ÷` and integer powers.
    pub fn exact(&self) -> Option<BigRational> {
        match self {
            Self::Num(Number::Rational(r)) => Some(r.clone()),
            Self::Add(xs) => xs
                .iter()
                .try_fold(BigRational::zero(), |acc, x| Some(acc + x.exact()?)),
            Self::Mul(xs) => xs
                .iter()
                .try_fold(BigRational::from_integer(1.into()), |acc, x| {
                    Some(acc * x.exact()?)
                }),
            Self::Pow(b, e) => rational_pow(&b.exact()?, &e.exact()?),
            _ => None,
        }
    }
}

/// Values of the free variables for a numeric evaluation.
pub type Env = HashMap<String, Complex64>;

/// Evaluation stops past this many nodes (sums over huge ranges).
const EVAL_BUDGET: usize = 200_000;

impl Expr {
    /// The complex value of a scalar expression, if every symbol has a value.
    pub fn eval(&self, env: &Env) -> Option<Complex64> {
        let mut budget = EVAL_BUDGET;
        self.eval_with(env, &mut budget)
    }

    fn eval_with(&self, env: &Env, budget: &mut usize) -> Option<Complex64> {
        *budget = budget.checked_sub(1)?;
        let value = match self {
            Self::Num(n) => Complex64::new(n.to_f64(), 0.0),
            Self::Sym(s) => *env.get(s)?,
            Self::Const(c) => match c {
                Constant::Pi => Complex64::new(std::f64::consts::PI, 0.0),
                Constant::E => Complex64::new(std::f64::consts::E, 0.0),
                Constant::I => Complex64::new(0.0, 1.0),
                Constant::Infinity => return None,
            },
            Self::Add(xs) => {
                let mut acc = Complex64::zero();
                for x in xs {
                    acc += x.eval_with(env, budget)?;
                }
                acc
            }
            Self::Mul(xs) => {
                let mut acc = Complex64::new(1.0, 0.0);
                for x in xs {
                    acc *= x.eval_with(env, budget)?;
                }
                acc
            }
            Self::Pow(b, e) => {
                if let (Some(br), Some(er)) = (b.exact(), e.exact())
                    && let Some(r) = rational_pow(&br, &er)
                {
                    return Some(Complex64::new(super::number::rational_to_f64(&r), 0.0));
                }
                let base = b.eval_with(env, budget)?;
                let exponent = e.eval_with(env, budget)?;
                pow(base, exponent)?
            }
            Self::Func(f, args) => {
                let values = args
                    .iter()
                    .map(|a| a.eval_with(env, budget))
                    .collect::<Option<Vec<_>>>()?;
                apply(*f, &values)?
            }
            Self::Apply(name, args) => {
                let values = args
                    .iter()
                    .map(|a| a.eval_with(env, budget))
                    .collect::<Option<Vec<_>>>()?;
                undefined_function(name, &values)
            }
            Self::Aggregate {
                kind,
                var,
                lo,
                hi,
                body,
            } => {
                let lo = integer_value(lo.eval_with(env, budget)?)?;
                let hi = integer_value(hi.eval_with(env, budget)?)?;
                if hi - lo > 10_000 {
                    return None;
                }
                let mut inner = env.clone();
                let mut acc = match kind {
                    Aggregate::Sum => Complex64::zero(),
                    Aggregate::Product => Complex64::new(1.0, 0.0),
                };
                for k in lo..=hi {
                    inner.insert(var.clone(), Complex64::new(k as f64, 0.0));
                    let term = body.eval_with(&inner, budget)?;
                    match kind {
                        Aggregate::Sum => acc += term,
                        Aggregate::Product => acc *= term,
                    }
                }
                acc
            }
            _ => return None,
        };
        (value.re.is_finite() && value.im.is_finite()).then_some(value)
    }
}

fn integer_value(z: Complex64) -> Option<i64> {
    (z.im.abs() < 1e-9 && (z.re - z.re.round()).abs() < 1e-9 && z.re.abs() < 1e12)
        .then(|| z.re.round() as i64)
}

fn pow(base: Complex64, exponent: Complex64) -> Option<Complex64> {
    if exponent.im == 0.0 && exponent.re.fract() == 0.0 && exponent.re.abs() <= 1024.0 {
        if base == Complex64::zero() && exponent.re < 0.0 {
            return None;
        }
        return Some(base.powi(exponent.re as i32));
    }
    if base.im == 0.0 && exponent.im == 0.0 && base.re >= 0.0 {
        return Some(Complex64::new(base.re.powf(exponent.re), 0.0));
    }
    // Real odd roots of negative numbers (cube root of -8 is -2).
    if base.im == 0.0 && exponent.im == 0.0 && base.re < 0.0 {
        let recip = 1.0 / exponent.re;
        if (recip - recip.round()).abs() < 1e-12 && (recip.round() as i64) % 2 != 0 {
            return Some(Complex64::new(-(-base.re).powf(exponent.re), 0.0));
        }
    }
    if base == Complex64::zero() {
        return None;
    }
    Some(base.powc(exponent))
}

fn real(z: Complex64) -> Option<f64> {
    (z.im.abs() < 1e-12).then_some(z.re)
}

fn apply(f: Func, args: &[Complex64]) -> Option<Complex64> {
    let x = *args.first()?;
    Some(match f {
        Func::Sin => x.sin(),
        Func::Cos => x.cos(),
        Func::Tan => x.tan(),
        Func::Sec => x.cos().inv(),
        Func::Csc => x.sin().inv(),
        Func::Cot => x.tan().inv(),
        Func::Asin => x.asin(),
        Func::Acos => x.acos(),
        Func::Atan => x.atan(),
        Func::Sinh => x.sinh(),
        Func::Cosh => x.cosh(),
        Func::Tanh => x.tanh(),
        Func::Log => {
            if x == Complex64::zero() {
                return None;
            }
            match args.get(1) {
                Some(base) => x.ln() / base.ln(),
                None => x.ln(),
            }
        }
        Func::Exp => x.exp(),
        Func::Abs => Complex64::new(x.norm(), 0.0),
        Func::Floor => Complex64::new(real(x)?.floor(), 0.0),
        Func::Ceil => Complex64::new(real(x)?.ceil(), 0.0),
        Func::Factorial => {
            let n = integer_value(x)?;
            if !(0..=170).contains(&n) {
                return None;
            }
            Complex64::new((1..=n).map(|k| k as f64).product(), 0.0)
        }
        Func::Binom => {
            let n = integer_value(x)?;
            let k = integer_value(*args.get(1)?)?;
            if k < 0 || n < 0 || k > n || n > 1000 {
                return Some(Complex64::zero());
            }
            let k = k.min(n - k);
            let mut acc = 1.0;
            for i in 0..k {
                acc = acc * (n - i) as f64 / (i + 1) as f64;
            }
            Complex64::new(acc.round(), 0.0)
        }
        Func::Min | Func::Max => {
            let reals = args.iter().map(|a| real(*a)).collect::<Option<Vec<_>>>()?;
            let pick = if f == Func::Min { f64::min } else { f64::max };
            Complex64::new(reals.into_iter().reduce(pick)?, 0.0)
        }
        Func::Gcd | Func::Lcm => {
            let a = integer_value(x)?;
            let b = integer_value(*args.get(1)?)?;
            let g = num_integer::Integer::gcd(&a, &b);
            let value = if f == Func::Gcd {
                g
            } else if g == 0 {
                0
            } else {
                (a / g * b).abs()
            };
            Complex64::new(value as f64, 0.0)
        }
    })
}

/// A fixed, smooth, name-dependent function standing for an undefined one,
/// so that `f(x) + f(y)` and `f(y) + f(x)` evaluate alike and `f(x)` and
/// `g(x)` almost surely differ.
fn undefined_function(name: &str, args: &[Complex64]) -> Complex64 {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let a = 0.5 + (h % 1000) as f64 / 997.0;
    let b = ((h >> 10) % 1000) as f64 / 311.0;
    let c = 1.0 + ((h >> 20) % 1000) as f64 / 503.0;
    let mut acc = Complex64::new(b, 0.0);
    for (i, x) in args.iter().enumerate() {
        acc += (x * (a + i as f64 * 0.37) + b).sin() * c + x * 0.1;
    }
    acc
}

impl Expr {
    /// A normal form for structural comparison: nested sums and products
    /// flattened and their terms sorted.
    pub fn canonical(&self) -> Expr {
        self.map(&|e| match e {
            Expr::Add(xs) | Expr::Mul(xs) if xs.len() == 1 => Some(xs[0].canonical()),
            Expr::Add(xs) => {
                let mut flat = Vec::new();
                for x in xs.iter().map(Expr::canonical) {
                    match x {
                        Expr::Add(inner) => flat.extend(inner),
                        other => flat.push(other),
                    }
                }
                flat.sort_by_cached_key(|x| x.to_string());
                Some(Expr::Add(flat))
            }
            Expr::Mul(xs) => {
                let mut flat = Vec::new();
                for x in xs.iter().map(Expr::canonical) {
                    match x {
                        Expr::Mul(inner) => flat.extend(inner),
                        Expr::Num(n) if n.is_one() => {}
                        other => flat.push(other),
                    }
                }
                if flat.is_empty() {
                    return Some(num(1));
                }
                if flat.len() == 1 {
                    return flat.pop();
                }
                flat.sort_by_cached_key(|x| x.to_string());
                Some(Expr::Mul(flat))
            }
            _ => None,
        })
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, xs: &[Expr], sep: &str| -> fmt::Result {
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{x}")?;
            }
            Ok(())
        };
        match self {
            Self::Num(n) => write!(f, "{n}"),
            Self::Sym(s) => f.write_str(s),
            Self::Const(c) => f.write_str(match c {
                Constant::Pi => "pi",
                Constant::E => "E",
                Constant::I => "I",
                Constant::Infinity => "oo",
            }),
            Self::Add(xs) => {
                f.write_str("(")?;
                list(f, xs, " + ")?;
                f.write_str(")")
            }
            Self::Mul(xs) => {
                f.write_str("(")?;
                list(f, xs, "*")?;
                f.write_str(")")
            }
            Self::Pow(a, b) => write!(f, "({a})**({b})"),
            Self::Func(g, xs) => {
                write!(f, "{}(", g.name())?;
                list(f, xs, ", ")?;
                f.write_str(")")
            }
            Self::Apply(n, xs) => {
                write!(f, "{n}(")?;
                list(f, xs, ", ")?;
                f.write_str(")")
            }
            Self::Aggregate {
                kind,
                var,
                lo,
                hi,
                body,
            } => write!(
                f,
                "{}({body}, ({var}, {lo}, {hi}))",
                if *kind == Aggregate::Sum {
                    "Sum"
                } else {
                    "Product"
                }
            ),
            Self::Tuple(xs) => {
                f.write_str("(")?;
                list(f, xs, ", ")?;
                f.write_str(")")
            }
            Self::Set(xs) => {
                f.write_str("{")?;
                list(f, xs, ", ")?;
                f.write_str("}")
            }
            Self::Interval {
                lo,
                hi,
                lo_open,
                hi_open,
            } => write!(
                f,
                "{}{lo}, {hi}{}",
                if *lo_open { "(" } else { "[" },
                if *hi_open { ")" } else { "]" }
            ),
            Self::Union(xs) => list(f, xs, " U "),
            Self::Matrix(rows) => {
                f.write_str("Matrix([")?;
                for (i, row) in rows.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str("[")?;
                    list(f, row, ", ")?;
                    f.write_str("]")?;
                }
                f.write_str("])")
            }
            Self::Relation(terms, ops) => {
                for (i, t) in terms.iter().enumerate() {
                    if i > 0 {
                        write!(f, " {} ", ops[i - 1].symbol())?;
                    }
                    write!(f, "{t}")?;
                }
                Ok(())
            }
            Self::PlusMinus(x) => write!(f, "±{x}"),
        }
    }
}

/// f64 of an integer-valued rational, if small.
pub fn small_integer(r: &BigRational) -> Option<i64> {
    r.is_integer().then(|| r.to_integer().to_i64()).flatten()
}
