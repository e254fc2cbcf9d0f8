//! The synthetic arithmetic task: problems of configurable difficulty,
//! a seedable split into train and held-out sets, gold answers, and
//! step-by-step solutions in the R1 format for the cold start.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Add,
    Sub,
    Mul,
}

impl Op {
    fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Sub => '-',
            Op::Mul => '*',
        }
    }
}

/// How hard the problems are.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Difficulty {
    pub min_digits: u32,
    pub max_digits: u32,
    pub ops: Vec<Op>,
    /// Operands per problem (2 = one operation; more chain operations).
    pub terms: usize,
    /// Share of problems phrased as word problems (0–1).
    pub word_problems: f64,
}

impl Default for Difficulty {
    fn default() -> Self {
        Self {
            min_digits: 1,
            max_digits: 2,
            ops: vec![Op::Add],
            terms: 2,
            word_problems: 0.0,
        }
    }
}

impl Difficulty {
    pub fn validate(&self, at: &str) -> Result<(), String> {
        if self.min_digits == 0 || self.max_digits < self.min_digits || self.max_digits > 9 {
            return Err(format!("{at}: need 1 ≤ min_digits ≤ max_digits ≤ 9"));
        }
        if self.ops.is_empty() {
            return Err(format!("{at}.ops: at least one operation"));
        }
        if !(2..=4).contains(&self.terms) {
            return Err(format!("{at}.terms: 2 to 4 operands"));
        }
        if !(0.0..=1.0).contains(&self.word_problems) {
            return Err(format!("{at}.word_problems: a share in [0, 1]"));
        }
        Ok(())
    }
}

/// One problem with its answer and a worked solution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub question: String,
    pub answer: i64,
    /// Reasoning steps (the content of `<think>`).
    pub reasoning: String,
}

impl Problem {
    /// The completion the cold start trains on: it continues a prompt that
    /// ends with `<think>`.
    pub fn solution(&self) -> String {
        format!(
            "{}</think> <answer>{}</answer>",
            self.reasoning, self.answer
        )
    }
}

/// Which side of the split a problem belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    HeldOut,
}

/// One in this many distinct problems is held out.
const HELD_OUT_EVERY: u64 = 8;

fn digits(n: i64) -> Vec<u32> {
    n.unsigned_abs()
        .to_string()
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .collect()
}

/// Column addition, ones first, a carry added as its own step (so every
/// step is a one-digit sum or an increment):
/// "7+5=12, carry 1. 4+8=12, 12+1=13. 47+85=132."
fn add_steps(a: i64, b: i64) -> String {
    let (da, db) = (digits(a), digits(b));
    let columns = da.len().max(db.len());
    let mut parts = Vec::new();
    let mut carry = 0;
    for i in 0..columns {
        let x = da.get(i).copied().unwrap_or(0);
        let y = db.get(i).copied().unwrap_or(0);
        let s = x + y + carry;
        let step = if carry > 0 {
            format!("{x}+{y}={}, {}+{carry}={s}", x + y, x + y)
        } else {
            format!("{x}+{y}={s}")
        };
        carry = s / 10;
        parts.push(if carry > 0 && i + 1 < columns {
            format!("{step}, carry {carry}.")
        } else {
            format!("{step}.")
        });
    }
    parts.push(format!("{a}+{b}={}.", a + b));
    parts.join(" ")
}

/// Column subtraction of the smaller from the larger, with borrows.
fn sub_steps(a: i64, b: i64) -> String {
    let (big, small, negative) = if a >= b { (a, b, false) } else { (b, a, true) };
    let (dg, ds) = (digits(big), digits(small));
    let mut parts = Vec::new();
    if negative {
        parts.push(format!("{a}<{b}, so compute {b}-{a} and negate."));
    }
    let mut borrow = 0;
    for (i, &digit) in dg.iter().enumerate() {
        let x = digit as i32 - borrow;
        let y = ds.get(i).copied().unwrap_or(0) as i32;
        if x < y {
            parts.push(format!("{}-{y}={}, borrow 1.", x + 10, x + 10 - y));
            borrow = 1;
        } else {
            parts.push(format!("{x}-{y}={}.", x - y));
            borrow = 0;
        }
    }
    parts.push(format!("{a}-{b}={}.", a - b));
    parts.join(" ")
}

/// Multiplication by partial products of the second factor's digits.
fn mul_steps(a: i64, b: i64) -> String {
    let db = digits(b);
    if db.len() == 1 {
        return format!("{a}*{b}={}.", a * b);
    }
    let mut parts = Vec::new();
    let mut partials = Vec::new();
    for (i, d) in db.iter().enumerate() {
        let p = a * i64::from(*d) * 10i64.pow(i as u32);
        parts.push(format!("{a}*{}={p}.", i64::from(*d) * 10i64.pow(i as u32)));
        partials.push(p.to_string());
    }
    parts.push(format!("{}={}.", partials.join("+"), a * b));
    parts.join(" ")
}

fn number(rng: &mut StdRng, d: &Difficulty) -> i64 {
    let digits = rng.random_range(d.min_digits..=d.max_digits);
    let low = if digits == 1 {
        0
    } else {
        10i64.pow(digits - 1)
    };
    rng.random_range(low..10i64.pow(digits))
}

const NAMES: [&str; 6] = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fay"];
const THINGS: [&str; 6] = ["apples", "coins", "books", "stamps", "marbles", "cards"];

fn word_problem(rng: &mut StdRng, a: i64, b: i64, op: Op) -> Option<String> {
    let name = NAMES[rng.random_range(0..NAMES.len())];
    let thing = THINGS[rng.random_range(0..THINGS.len())];
    Some(match op {
        Op::Add => format!(
            "{name} has {a} {thing} and gets {b} more. How many {thing} does {name} have now?"
        ),
        Op::Sub if a >= b => {
            format!("{name} has {a} {thing} and gives away {b}. How many {thing} are left?")
        }
        Op::Mul => {
            format!("{name} buys {a} boxes with {b} {thing} in each. How many {thing} is that?")
        }
        Op::Sub => return None,
    })
}

/// The problem at `index` of the stream seeded by `seed`.
fn problem_at(d: &Difficulty, seed: u64, index: u64) -> Problem {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index);
    let mut value = number(&mut rng, d);
    let mut expression = value.to_string();
    let mut steps = Vec::new();
    let mut last = None;
    for _ in 1..d.terms {
        let op = d.ops[rng.random_range(0..d.ops.len())];
        let operand = if op == Op::Mul {
            rng.random_range(2..=9).max(1)
        } else {
            number(&mut rng, d)
        };
        steps.push(match op {
            Op::Add => add_steps(value, operand),
            Op::Sub => sub_steps(value, operand),
            Op::Mul => mul_steps(value, operand),
        });
        last = Some((value, operand, op));
        value = match op {
            Op::Add => value + operand,
            Op::Sub => value - operand,
            Op::Mul => value * operand,
        };
        expression = format!("{expression}{}{operand}", op.symbol());
    }
    let question = match last {
        Some((a, b, op)) if d.terms == 2 && rng.random::<f64>() < d.word_problems => {
            word_problem(&mut rng, a, b, op).unwrap_or_else(|| format!("What is {expression}?"))
        }
        _ => format!("What is {expression}?"),
    };
    Problem {
        question,
        answer: value,
        reasoning: steps.join(" "),
    }
}

fn split_of(problem: &Problem) -> Split {
    let h = problem
        .question
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    if h % HELD_OUT_EVERY == 0 {
        Split::HeldOut
    } else {
        Split::Train
    }
}

/// A deterministic, endless stream of problems of one side of the split.
#[derive(Debug, Clone)]
pub struct ProblemStream {
    difficulty: Difficulty,
    seed: u64,
    split: Split,
    /// Position in the underlying stream (both sides share it).
    cursor: u64,
}

impl ProblemStream {
    pub fn new(difficulty: Difficulty, seed: u64, split: Split) -> Self {
        Self {
            difficulty,
            seed,
            split,
            cursor: 0,
        }
    }

    /// Resumes a stream at a saved position.
    pub fn at(mut self, cursor: u64) -> Self {
        self.cursor = cursor;
        self
    }

    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The first `n` problems of the stream (independent of the cursor).
    pub fn first(difficulty: &Difficulty, seed: u64, split: Split, n: usize) -> Vec<Problem> {
        Self::new(difficulty.clone(), seed, split).take(n).collect()
    }
}

impl Iterator for ProblemStream {
    type Item = Problem;

    fn next(&mut self) -> Option<Problem> {
        loop {
            let problem = problem_at(&self.difficulty, self.seed, self.cursor);
            self.cursor += 1;
            if split_of(&problem) == self.split {
                return Some(problem);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hard() -> Difficulty {
        Difficulty {
            min_digits: 1,
            max_digits: 3,
            ops: vec![Op::Add, Op::Sub, Op::Mul],
            terms: 3,
            word_problems: 0.0,
        }
    }

    #[test]
    fn worked_solutions_reach_the_gold_answer() {
        for p in ProblemStream::new(hard(), 3, Split::Train).take(500) {
            let last = p
                .reasoning
                .rsplit(' ')
                .next()
                .unwrap()
                .trim_end_matches('.');
            let value: i64 = last.rsplit('=').next().unwrap().parse().unwrap();
            assert_eq!(value, p.answer, "{p:?}");
        }
    }

    #[test]
    fn column_steps_are_readable() {
        assert_eq!(
            add_steps(47, 85),
            "7+5=12, carry 1. 4+8=12, 12+1=13. 47+85=132."
        );
        assert_eq!(add_steps(19, 3), "9+3=12, carry 1. 1+0=1, 1+1=2. 19+3=22.");
        assert_eq!(sub_steps(52, 17), "12-7=5, borrow 1. 4-1=3. 52-17=35.");
        assert_eq!(
            sub_steps(3, 9),
            "3<9, so compute 9-3 and negate. 9-3=6. 3-9=-6."
        );
        assert_eq!(mul_steps(12, 34), "12*4=48. 12*30=360. 48+360=408.");
    }

    #[test]
    fn the_split_is_disjoint_and_reproducible() {
        let d = Difficulty {
            max_digits: 3,
            ..Difficulty::default()
        };
        let train: std::collections::HashSet<_> = ProblemStream::first(&d, 1, Split::Train, 2000)
            .into_iter()
            .map(|p| p.question)
            .collect();
        let held = ProblemStream::first(&d, 1, Split::HeldOut, 200);
        assert!(held.iter().all(|p| !train.contains(&p.question)));
        assert_eq!(held, ProblemStream::first(&d, 1, Split::HeldOut, 200));
        assert_ne!(held, ProblemStream::first(&d, 2, Split::HeldOut, 200));
    }

    #[test]
    fn a_resumed_stream_continues_where_it_stopped() {
        let d = Difficulty::default();
        let mut s = ProblemStream::new(d.clone(), 9, Split::Train);
        let first: Vec<_> = s.by_ref().take(5).collect();
        let rest: Vec<_> = s.clone().take(5).collect();
        let resumed: Vec<_> = ProblemStream::new(d, 9, Split::Train)
            .at(s.cursor())
            .take(5)
            .collect();
        assert_eq!(rest, resumed);
        assert_ne!(first, rest);
    }
}
