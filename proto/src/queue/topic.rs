use std::marker::PhantomData;

use crate::pb;

/// A stream of the run and the message type its entries carry.
pub struct Topic<M> {
    name: &'static str,
    message: PhantomData<fn() -> M>,
}

impl<M> Topic<M> {
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            message: PhantomData,
        }
    }

    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<M> std::fmt::Debug for Topic<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Jobs from the learner's feeder to the inference replicas.
pub const PROMPTS: Topic<pb::PromptJob> = Topic::new("prompts");
/// Sampled groups from inference to reward.
pub const ROLLOUTS: Topic<pb::Group> = Topic::new("rollouts");
/// Scored groups from reward to the learner.
pub const SCORED: Topic<pb::ScoredGroup> = Topic::new("scored");
/// Entries no consumer could process, with the reason.
pub const DEAD: Topic<pb::DeadLetter> = Topic::new("dead");
