//! Deciding whether a predicted answer equals the gold answer: exact numbers,
//! decimals after rounding, expressions by evaluation at random points,
//! relations, sets, intervals, tuples and matrices.

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use num_complex::Complex64;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::expr::{Constant, Env, Expr, RelOp, neg};
use super::extract::Candidate;
use super::number::{Number, round_to};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompareOptions {
    /// Decimals are compared after rounding to this many places.
    pub float_rounding: u32,
    /// When false, variable names do not matter (`f(x)` equals `f(y)`).
    pub strict: bool,
    /// Whether a gold set (`x \in [1,2]`) may match a predicted relation
    /// (`1 \le x \le 2`). A gold relation always may match a predicted set.
    pub allow_set_relation: bool,
    /// A decimal with three or more places also matches an exact value that
    /// rounds to it at those places (`2.6667` for 8/3).
    pub accept_rounded_decimals: bool,
    /// A percentage `p%` also matches the bare number `p` (as well as
    /// `p/100`, which always matches).
    pub percent_matches_bare_number: bool,
}

impl Default for CompareOptions {
    fn default() -> Self {
        Self {
            float_rounding: 6,
            strict: true,
            allow_set_relation: false,
            accept_rounded_decimals: true,
            percent_matches_bare_number: true,
        }
    }
}

/// Limits one comparison. Work past the deadline is abandoned and the
/// comparison reported as undecided.
#[derive(Debug)]
pub struct Budget {
    deadline: Instant,
    exceeded: Cell<bool>,
}

impl Budget {
    pub fn until(deadline: Instant) -> Self {
        Self {
            deadline,
            exceeded: Cell::new(false),
        }
    }

    fn ok(&self) -> bool {
        if self.exceeded.get() {
            return false;
        }
        if Instant::now() > self.deadline {
            self.exceeded.set(true);
            return false;
        }
        true
    }

    pub fn exceeded(&self) -> bool {
        self.exceeded.get()
    }
}

struct Ctx<'a> {
    options: CompareOptions,
    budget: &'a Budget,
}

/// True when any gold candidate matches any predicted candidate.
pub fn verify(
    gold: &[Candidate],
    pred: &[Candidate],
    options: CompareOptions,
    budget: &Budget,
) -> bool {
    let ctx = Ctx { options, budget };
    gold.iter().any(|g| {
        pred.iter().any(|p| match (g, p) {
            (Candidate::Value(g), Candidate::Value(p)) => ctx.budget.ok() && ctx.equal(g, p),
            (Candidate::Text(g), Candidate::Text(p)) => {
                let (g, p) = (g.trim(), p.trim());
                !g.is_empty() && g == p
            }
            _ => false,
        })
    })
}

/// Is `e` built only from symbols (`x`, `AB`, `f(x)`, `(p, q)`, `NO/BO`)?
fn only_symbols(e: &Expr) -> bool {
    let mut symbols = 0;
    let mut other = false;
    e.visit(&mut |node| match node {
        Expr::Sym(_) | Expr::Apply(..) => symbols += 1,
        Expr::Num(n) => {
            if !(n.is_one() || *n == Number::int(-1)) {
                other = true;
            }
        }
        Expr::Const(Constant::E) => symbols += 1,
        Expr::Mul(_) | Expr::Pow(..) | Expr::Tuple(_) | Expr::Func(..) => {}
        _ => other = true,
    });
    symbols > 0 && !other
}

fn is_equation(e: &Expr) -> bool {
    matches!(e, Expr::Relation(_, ops) if ops.iter().all(|o| *o == RelOp::Eq))
}

/// `x = …` (or `x \in …`), possibly chained: `x = 5 + 6 = 11`.
fn is_assignment(e: &Expr) -> bool {
    match e {
        Expr::Relation(terms, ops) => {
            ops.iter().all(|o| matches!(o, RelOp::Eq | RelOp::In)) && only_symbols(&terms[0])
        }
        _ => false,
    }
}

fn last_rhs(e: &Expr) -> Expr {
    match e {
        Expr::Relation(terms, _) => terms.last().cloned().unwrap_or_else(|| e.clone()),
        other => other.clone(),
    }
}

/// `a = b = c` as `a = c`.
fn first_to_last(e: &Expr) -> Expr {
    match e {
        Expr::Relation(terms, ops) if terms.len() > 2 => Expr::Relation(
            vec![terms[0].clone(), terms[terms.len() - 1].clone()],
            vec![*ops.last().unwrap_or(&RelOp::Eq)],
        ),
        other => other.clone(),
    }
}

fn sub(a: &Expr, b: &Expr) -> Expr {
    Expr::Add(vec![a.clone(), neg(b.clone())])
}

/// Expands `±` into a set of the values.
fn expand(e: &Expr) -> Expr {
    let variants = e.expand_plus_minus();
    if variants.len() == 1 {
        return variants.into_iter().next().unwrap_or_else(|| e.clone());
    }
    let mut unique: Vec<Expr> = Vec::new();
    for v in variants {
        if !unique.contains(&v) {
            unique.push(v);
        }
    }
    Expr::Set(unique)
}

fn is_set_like(e: &Expr) -> bool {
    matches!(e, Expr::Set(_) | Expr::Interval { .. } | Expr::Union(_))
        || matches!(e, Expr::Tuple(xs) if xs.len() == 2)
}

impl Ctx<'_> {
    fn equal(&self, gold: &Expr, pred: &Expr) -> bool {
        if !self.budget.ok() {
            return false;
        }
        let mut gold = expand(gold);
        let mut pred = expand(pred);
        // `i` read as a variable on one side and as the imaginary unit on the other.
        if has_imaginary_unit(&gold) || has_imaginary_unit(&pred) {
            gold = imaginary_i(&gold);
            pred = imaginary_i(&pred);
        }
        if !self.options.strict {
            pred = rename_like(&pred, &gold);
        }

        let gold_assignment = is_assignment(&gold);
        let pred_assignment = is_assignment(&pred);
        if gold_assignment && !pred_assignment && !pred.is_relation() {
            gold = last_rhs(&gold);
        } else if pred_assignment && !gold_assignment && !gold.is_relation() {
            pred = last_rhs(&pred);
        } else if gold_assignment && pred_assignment {
            gold = first_to_last(&gold);
            pred = first_to_last(&pred);
        } else if gold_assignment
            && pred.is_relation()
            && matches!(&gold, Expr::Relation(_, ops) if ops.contains(&RelOp::In))
        {
            // `x \in S` against `a \le x \le b`.
            gold = last_rhs(&gold);
        } else if (pred_assignment
            && gold.is_relation()
            && matches!(&pred, Expr::Relation(_, ops) if ops.contains(&RelOp::In)))
            || (is_equation(&pred) && !is_equation(&gold) && !gold.is_relation())
        {
            pred = last_rhs(&pred);
        }

        if gold.is_relation() && is_set_like(&pred) {
            return self.relation_matches_set(&gold, &pred);
        }
        if pred.is_relation() && is_set_like(&gold) {
            return self.options.allow_set_relation && self.relation_matches_set(&pred, &gold);
        }
        if gold.canonical() == pred.canonical() {
            return true;
        }
        match (&gold, &pred) {
            (Expr::Relation(..), Expr::Relation(..)) => self.relations_equal(&gold, &pred),
            (Expr::Relation(..), _) | (_, Expr::Relation(..)) => false,
            _ if gold.is_collection() || pred.is_collection() => self.sets_equal(&gold, &pred),
            (Expr::Sym(_), _) | (_, Expr::Sym(_)) => symbols_equal(&gold, &pred),
            _ if has_matrix(&gold) || has_matrix(&pred) => {
                match (matrix_value(&gold), matrix_value(&pred)) {
                    (Some(a), Some(b)) => {
                        a.len() == b.len()
                            && a.iter().zip(&b).all(|(ra, rb)| {
                                ra.len() == rb.len()
                                    && ra.iter().zip(rb).all(|(x, y)| self.equal(x, y))
                            })
                    }
                    _ => false,
                }
            }
            _ => self.numbers_equal(&gold, &pred) || self.same_function(&gold, &pred, false),
        }
    }

    fn relations_equal(&self, gold: &Expr, pred: &Expr) -> bool {
        let (Expr::Relation(gt, gops), Expr::Relation(pt, pops)) = (gold, pred) else {
            return false;
        };
        if gops.len() != pops.len() {
            return false;
        }
        if gops.len() > 1 {
            return (0..gops.len()).all(|i| {
                self.relations_equal(
                    &Expr::Relation(vec![gt[i].clone(), gt[i + 1].clone()], vec![gops[i]]),
                    &Expr::Relation(vec![pt[i].clone(), pt[i + 1].clone()], vec![pops[i]]),
                )
            });
        }
        let (gop, pop) = (gops[0], pops[0]);
        if gop == RelOp::In || pop == RelOp::In {
            return gop == pop && self.equal(&gt[0], &pt[0]) && self.equal(&gt[1], &pt[1]);
        }
        let g = sub(&gt[0], &gt[1]);
        if gop == pop && self.equal(&g, &sub(&pt[0], &pt[1])) {
            return true;
        }
        if gop.flipped() == pop && self.equal(&g, &sub(&pt[1], &pt[0])) {
            return true;
        }
        // Equations with variables: the same up to a constant factor
        // (`2x + 4y - 3 = 0` and `y = -x/2 + 3/4`).
        if gop == RelOp::Eq && pop == RelOp::Eq {
            let p = sub(&pt[0], &pt[1]);
            if !g.free_symbols().is_empty() {
                return self.same_function(&g, &p, true);
            }
        }
        false
    }

    /// Numbers: exact rationals exactly, decimals after rounding, other
    /// constant expressions to 1e-12 relative.
    fn numbers_equal(&self, gold: &Expr, pred: &Expr) -> bool {
        if self.options.percent_matches_bare_number
            && let (Some((g, g_pct)), Some((p, p_pct))) = (gold.as_number(), pred.as_number())
            && g_pct != p_pct
            && self.numbers_equal(&Expr::Num(g.clone()), &Expr::Num(p.clone()))
        {
            return true;
        }
        if self.options.accept_rounded_decimals && self.rounded_decimal(gold, pred) {
            return true;
        }
        let digits = self.options.float_rounding;
        let atomic = gold.as_number().is_some() || pred.as_number().is_some();
        if atomic && (gold.contains_float() || pred.contains_float()) {
            return match (constant_value(gold), constant_value(pred)) {
                (Some(a), Some(b)) => {
                    round_to(a.re, digits) == round_to(b.re, digits)
                        && round_to(a.im, digits) == round_to(b.im, digits)
                }
                _ => false,
            };
        }
        if let (Some(a), Some(b)) = (gold.exact(), pred.exact()) {
            return a == b;
        }
        if atomic && !gold.contains_float() && !pred.contains_float() {
            // An exact number against an irrational expression: compare the
            // values, which agree only if the expression simplifies to it.
            return match (constant_value(gold), constant_value(pred)) {
                (Some(a), Some(b)) => close(a, b, 1e-12),
                _ => false,
            };
        }
        match (constant_value(gold), constant_value(pred)) {
            (Some(a), Some(b)) => close(a, b, 1e-12),
            _ => false,
        }
    }

    /// One side a decimal written with `d ≥ 3` places, the other an exact
    /// constant that rounds to it at `d` places.
    fn rounded_decimal(&self, gold: &Expr, pred: &Expr) -> bool {
        let check = |decimal: &Expr, exact: &Expr| -> bool {
            let Some((Number::Float(_), false)) = decimal.as_number() else {
                return false;
            };
            let Some(places) = decimal_places(decimal) else {
                return false;
            };
            if places < 3 || exact.contains_float() {
                return false;
            }
            match (constant_value(decimal), constant_value(exact)) {
                (Some(d), Some(e)) if e.im == 0.0 => {
                    round_to(e.re, places) == round_to(d.re, places)
                }
                _ => false,
            }
        };
        check(gold, pred) || check(pred, gold)
    }

    /// Symbolic equality by evaluation at random points; with `up_to_factor`
    /// also `gold = k · pred` for a constant k ≠ 0.
    fn same_function(&self, gold: &Expr, pred: &Expr, up_to_factor: bool) -> bool {
        let symbols: BTreeSet<String> = gold
            .free_symbols()
            .union(&pred.free_symbols())
            .cloned()
            .collect();
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let mut agreeing = 0;
        let mut ratio: Option<Complex64> = None;
        for _ in 0..12 {
            if !self.budget.ok() {
                return false;
            }
            let env: Env = symbols
                .iter()
                .map(|s| (s.clone(), Complex64::new(rng.random_range(0.3..2.7), 0.0)))
                .collect();
            let (Some(a), Some(b)) = (gold.eval(&env), pred.eval(&env)) else {
                continue;
            };
            if up_to_factor {
                if b.norm() < 1e-12 {
                    if a.norm() > 1e-9 {
                        return false;
                    }
                    continue;
                }
                let r = a / b;
                match ratio {
                    None => ratio = Some(r),
                    Some(k) if close(k, r, 1e-8) => {}
                    Some(_) => return false,
                }
            } else if !close(a, b, 1e-9) {
                return false;
            }
            agreeing += 1;
            if agreeing >= 6 {
                break;
            }
        }
        agreeing >= 3 && ratio.is_none_or(|k| k.norm() > 1e-12)
    }

    fn sets_equal(&self, gold: &Expr, pred: &Expr) -> bool {
        let as_set = |e: &Expr| {
            if e.is_collection() {
                e.clone()
            } else {
                Expr::Set(vec![e.clone()])
            }
        };
        let (gold, pred) = (as_set(gold), as_set(pred));
        match (&gold, &pred) {
            (
                Expr::Interval {
                    lo: a,
                    hi: b,
                    lo_open: ao,
                    hi_open: bo,
                },
                Expr::Interval {
                    lo: c,
                    hi: d,
                    lo_open: co,
                    hi_open: dop,
                },
            ) => ao == co && bo == dop && self.equal(a, c) && self.equal(b, d),
            (
                Expr::Interval {
                    lo,
                    hi,
                    lo_open: true,
                    hi_open: true,
                },
                Expr::Tuple(xs) | Expr::Set(xs),
            )
            | (
                Expr::Tuple(xs) | Expr::Set(xs),
                Expr::Interval {
                    lo,
                    hi,
                    lo_open: true,
                    hi_open: true,
                },
            ) => xs.len() == 2 && self.equal(lo, &xs[0]) && self.equal(hi, &xs[1]),
            (Expr::Tuple(a), Expr::Tuple(b)) => self.ordered_equal(a, b),
            (Expr::Set(a), Expr::Tuple(b)) | (Expr::Tuple(a), Expr::Set(b)) => {
                self.ordered_equal(&unwrap_assignments(a), &unwrap_assignments(b))
            }
            (Expr::Set(a), Expr::Set(b)) => self.unordered_equal(&dedup(a), &dedup(b)),
            (Expr::Union(a), Expr::Union(b)) => self.unordered_equal(a, b),
            _ => false,
        }
    }

    fn ordered_equal(&self, a: &[Expr], b: &[Expr]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| self.equal(x, y))
    }

    /// Equal as multisets: every element of `a` matches a distinct one of `b`.
    fn unordered_equal(&self, a: &[Expr], b: &[Expr]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        let mut used = vec![false; b.len()];
        'outer: for x in a {
            for (j, y) in b.iter().enumerate() {
                if !used[j] && self.equal(x, y) {
                    used[j] = true;
                    continue 'outer;
                }
            }
            return false;
        }
        true
    }

    /// A relation in one unknown (`-2 \le x < 7`, `1 \le |z| \le 2`,
    /// `0 < f(x) < 1`) against a set of reals: the same membership at every
    /// boundary point, next to it, and at random points.
    fn relation_matches_set(&self, relation: &Expr, set: &Expr) -> bool {
        let Expr::Relation(terms, ops) = relation else {
            return false;
        };
        if ops.iter().any(|o| matches!(o, RelOp::In | RelOp::Ne)) {
            return false;
        }
        let set = match set {
            Expr::Tuple(xs) if xs.len() == 2 => Expr::Interval {
                lo: Box::new(xs[0].clone()),
                hi: Box::new(xs[1].clone()),
                lo_open: true,
                hi_open: true,
            },
            other => other.clone(),
        };
        // The unknown: the one term that is not a constant.
        let unknowns: Vec<&Expr> = terms
            .iter()
            .filter(|t| constant_value(t).is_none())
            .collect();
        let [subject] = unknowns.as_slice() else {
            return false;
        };
        // `f(x)` is itself the unknown; `|z|` is a function of the unknown z.
        let symbols = subject.free_symbols();
        let variable = match (subject, symbols.len()) {
            (Expr::Apply(..), _) => None,
            (_, 1) => symbols.into_iter().next(),
            _ => return false,
        };
        let holds = |t: f64| -> Option<bool> {
            let value = match &variable {
                Some(v) => {
                    let env: Env = HashMap::from([(v.clone(), Complex64::new(t, 0.0))]);
                    subject.eval(&env)?.re
                }
                None => t,
            };
            let values: Vec<f64> = terms
                .iter()
                .map(|term| {
                    if std::ptr::eq(term, *subject) {
                        Some(value)
                    } else {
                        constant_value(term).map(|c| c.re)
                    }
                })
                .collect::<Option<_>>()?;
            Some(ops.iter().enumerate().all(|(i, op)| {
                let (a, b) = (values[i], values[i + 1]);
                match op {
                    RelOp::Lt => a < b,
                    RelOp::Le => a <= b,
                    RelOp::Gt => a > b,
                    RelOp::Ge => a >= b,
                    RelOp::Eq => a == b,
                    RelOp::Ne | RelOp::In => false,
                }
            }))
        };
        let mut points: Vec<f64> = Vec::new();
        let mut anchor = |x: f64| {
            if x.is_finite() {
                let eps = 1e-6 * x.abs().max(1.0);
                points.extend([x, x - eps, x + eps, -x, -x - eps, -x + eps]);
            }
        };
        for term in terms {
            if let Some(c) = constant_value(term) {
                anchor(c.re);
            }
        }
        set.visit(&mut |e| {
            if let Some(c) = constant_value(e) {
                anchor(c.re);
            }
        });
        let mut rng = StdRng::seed_from_u64(7);
        points.extend((0..24).map(|_| rng.random_range(-1000.0..1000.0)));
        let mut checked = 0;
        for t in points {
            if !self.budget.ok() {
                return false;
            }
            let (Some(a), Some(b)) = (holds(t), contains(&set, t)) else {
                continue;
            };
            if a != b {
                return false;
            }
            checked += 1;
        }
        checked >= 8
    }
}

/// Membership of a real number in a set expression.
fn contains(set: &Expr, t: f64) -> Option<bool> {
    match set {
        Expr::Interval {
            lo,
            hi,
            lo_open,
            hi_open,
        } => {
            let lo = bound(lo)?;
            let hi = bound(hi)?;
            let above = if *lo_open { t > lo } else { t >= lo };
            let below = if *hi_open { t < hi } else { t <= hi };
            Some(above && below)
        }
        Expr::Union(parts) => {
            let mut any = false;
            for p in parts {
                any |= contains(p, t)?;
            }
            Some(any)
        }
        Expr::Set(items) => {
            let mut any = false;
            for i in items {
                any |= constant_value(i)?.re == t;
            }
            Some(any)
        }
        _ => None,
    }
}

fn bound(e: &Expr) -> Option<f64> {
    match e {
        Expr::Const(Constant::Infinity) => Some(f64::INFINITY),
        Expr::Mul(xs)
            if xs.len() == 2
                && xs[1] == Expr::Const(Constant::Infinity)
                && xs[0]
                    .exact()
                    .is_some_and(|r| r < num_rational::BigRational::from_integer(0.into())) =>
        {
            Some(f64::NEG_INFINITY)
        }
        other => constant_value(other).map(|c| c.re),
    }
}

fn constant_value(e: &Expr) -> Option<Complex64> {
    if !e.free_symbols().is_empty() {
        return None;
    }
    e.eval(&Env::new())
}

fn close(a: Complex64, b: Complex64, tolerance: f64) -> bool {
    let scale = a.norm().max(b.norm()).max(1.0);
    (a - b).norm() <= tolerance * scale
}

fn unwrap_assignments(items: &[Expr]) -> Vec<Expr> {
    items
        .iter()
        .map(|e| {
            if is_assignment(e) {
                last_rhs(e)
            } else {
                e.clone()
            }
        })
        .collect()
}

/// `e` vs `E`, `\text{odd}` vs `o·d·d`, and names compared case-insensitively
/// when longer than one letter.
fn symbols_equal(gold: &Expr, pred: &Expr) -> bool {
    let concat = |e: &Expr| -> Option<String> {
        match e {
            Expr::Sym(s) => Some(s.clone()),
            Expr::Const(Constant::E) => Some("e".into()),
            Expr::Mul(xs) => xs
                .iter()
                .map(|x| match x {
                    Expr::Sym(s) => Some(s.clone()),
                    Expr::Const(Constant::E) => Some("e".into()),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    };
    let (Some(g), Some(p)) = (concat(gold), concat(pred)) else {
        return false;
    };
    let fold = |s: String| {
        if s.chars().count() > 1 {
            s.to_lowercase()
        } else {
            s
        }
    };
    let (g, p) = (fold(g), fold(p));
    // Two different single letters stay different: `d` is not `E`.
    g == p
}

/// Renames the variables of `pred` to those of `gold`, in sorted order, when
/// both have as many (non-strict mode).
fn rename_like(pred: &Expr, gold: &Expr) -> Expr {
    let g = gold.free_symbols();
    let p = pred.free_symbols();
    if g.len() != p.len() || g == p {
        return pred.clone();
    }
    let map: HashMap<String, Expr> = p.into_iter().zip(g.into_iter().map(Expr::Sym)).collect();
    let renamed = pred.substitute(&map);
    // Undefined functions' arguments are symbols too.
    renamed
}

/// Distinct elements, in the order first written.
fn dedup(items: &[Expr]) -> Vec<Expr> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for item in items {
        let key = item.canonical();
        if !seen.contains(&key) {
            seen.push(key);
            out.push(item.clone());
        }
    }
    out
}

fn has_matrix(e: &Expr) -> bool {
    let mut found = false;
    e.visit(&mut |x| found |= matches!(x, Expr::Matrix(_)));
    found
}

type Rows = Vec<Vec<Expr>>;

/// Folds sums and products of matrices (and scalars) into one matrix.
fn matrix_value(e: &Expr) -> Option<Rows> {
    match e {
        Expr::Matrix(rows) => Some(rows.clone()),
        Expr::Tuple(xs) if xs.len() == 1 => matrix_value(&xs[0]),
        Expr::Add(xs) => {
            let mut acc: Option<Rows> = None;
            for x in xs {
                let m = matrix_value(x)?;
                acc = Some(match acc {
                    None => m,
                    Some(a) => {
                        if a.len() != m.len() || a.first()?.len() != m.first()?.len() {
                            return None;
                        }
                        a.into_iter()
                            .zip(m)
                            .map(|(ra, rb)| {
                                ra.into_iter()
                                    .zip(rb)
                                    .map(|(p, q)| Expr::Add(vec![p, q]))
                                    .collect()
                            })
                            .collect()
                    }
                });
            }
            acc
        }
        Expr::Mul(xs) => {
            let mut scalars = Vec::new();
            let mut acc: Option<Rows> = None;
            for x in xs {
                if has_matrix(x) {
                    let m = matrix_value(x)?;
                    acc = Some(match acc {
                        None => m,
                        Some(a) => matrix_product(&a, &m)?,
                    });
                } else {
                    scalars.push(x.clone());
                }
            }
            let m = acc?;
            Some(
                m.into_iter()
                    .map(|row| {
                        row.into_iter()
                            .map(|cell| {
                                let mut factors = scalars.clone();
                                factors.push(cell);
                                Expr::Mul(factors)
                            })
                            .collect()
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

fn matrix_product(a: &Rows, b: &Rows) -> Option<Rows> {
    let inner = a.first()?.len();
    if inner != b.len() {
        return None;
    }
    let cols = b.first()?.len();
    Some(
        a.iter()
            .map(|row| {
                (0..cols)
                    .map(|j| {
                        Expr::Add(
                            (0..inner)
                                .map(|k| Expr::Mul(vec![row[k].clone(), b[k][j].clone()]))
                                .collect(),
                        )
                    })
                    .collect()
            })
            .collect(),
    )
}

/// Decimal places a float was written with (from its shortest representation).
fn decimal_places(e: &Expr) -> Option<u32> {
    let Expr::Num(Number::Float(x)) = e else {
        return None;
    };
    let text = format!("{x}");
    if text.contains('e') {
        return None;
    }
    Some(
        text.split_once('.')
            .map_or(0, |(_, frac)| frac.len() as u32),
    )
}

fn has_imaginary_unit(e: &Expr) -> bool {
    let mut found = false;
    e.visit(&mut |x| found |= matches!(x, Expr::Const(Constant::I)));
    found
}

fn imaginary_i(e: &Expr) -> Expr {
    e.map(&|x| match x {
        Expr::Sym(s) if s == "i" => Some(Expr::Const(Constant::I)),
        _ => None,
    })
}
