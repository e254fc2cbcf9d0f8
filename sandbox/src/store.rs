//! One run's store: the limits armed (memory, instruction budget, wall time),
//! the guest called, and what it used afterwards. Shared by every
//! interpreter; what differs between them is the guest's state `W` and the
//! call.

use std::time::{Duration, Instant};

use wasmtime::{Engine, Store, UpdateDeadline};

use crate::limiter::RunLimiter;
use crate::limits::Limits;
use crate::sandbox::SandboxError;

/// Extra time before a run blocked in a host call (a sleep) is abandoned.
const HOST_CALL_SLACK: Duration = Duration::from_millis(50);

/// The state of one run's store.
pub struct RunState<W> {
    pub guest: W,
    pub limiter: RunLimiter,
}

/// How the guest call returned.
pub enum Ended {
    Exit(i32),
    WallTime,
    /// Instantiation failed (out of memory at start, or the host).
    Start(wasmtime::Error),
    /// The guest trapped or called `proc_exit`.
    Guest(wasmtime::Error),
}

/// A finished call and what it used.
pub struct Metered {
    pub ended: Ended,
    pub wall_time: Duration,
    pub fuel_used: u64,
    pub peak_memory_bytes: u64,
    pub memory_refused: bool,
}

/// Makes a store for `guest` with `limits` armed, runs `call` in it and
/// measures. The epoch check stops guest code at the deadline; the timer
/// also stops a guest blocked in a host call, which epochs cannot interrupt.
pub async fn metered<W, F>(
    engine: &Engine,
    guest: W,
    limits: &Limits,
    call: F,
) -> Result<Metered, SandboxError>
where
    W: Send + 'static,
    F: AsyncFnOnce(&mut Store<RunState<W>>) -> Result<i32, Ended>,
{
    let mut store = Store::new(
        engine,
        RunState {
            guest,
            limiter: RunLimiter::new(limits.memory_bytes),
        },
    );
    store.limiter(|state| &mut state.limiter);
    let fuel_budget = limits.fuel.unwrap_or(u64::MAX);
    store
        .set_fuel(fuel_budget)
        .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
    let started = Instant::now();
    let deadline = started + limits.wall_time;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        Ok(if Instant::now() >= deadline {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Continue(1)
        })
    });
    let ended =
        match tokio::time::timeout(limits.wall_time + HOST_CALL_SLACK, call(&mut store)).await {
            Ok(Ok(code)) => Ended::Exit(code),
            Ok(Err(ended)) => ended,
            Err(_) => Ended::WallTime,
        };
    let wall_time = started.elapsed();
    let fuel_used = fuel_budget.saturating_sub(store.get_fuel().unwrap_or(0));
    let limiter = &store.data().limiter;
    Ok(Metered {
        ended,
        wall_time,
        fuel_used,
        peak_memory_bytes: limiter.peak_memory_bytes as u64,
        memory_refused: limiter.memory_refused,
    })
}
