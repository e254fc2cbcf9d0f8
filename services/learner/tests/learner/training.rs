//! SFT and GRPO steps on a tiny model; checkpoints resume exactly.

use candle_core::Device;
use r1_learner::checkpoint::{self, TrainState};
use r1_learner::model::Policy;
use r1_learner::preset::Preset;
use r1_learner::train::{Batch, GrpoConfig, OldPolicy, OptimConfig, Sequence, TrainGroup, Trainer};

fn optim() -> OptimConfig {
    OptimConfig {
        lr: 3e-3,
        warmup_steps: 0,
        micro_batch_size: 3,
        ..OptimConfig::default()
    }
}

fn sequences() -> Vec<Sequence> {
    (0..6u32)
        .map(|i| Sequence {
            tokens: (0..10).map(|j| (i * 7 + j * 3) % 250).collect(),
            prompt_len: 4,
        })
        .collect()
}

#[test]
fn sft_lowers_the_loss_on_a_fixed_batch() {
    let policy = Policy::random(&Preset::Micro.config(), 5, &Device::Cpu).unwrap();
    let mut trainer = Trainer::new(policy, optim()).unwrap();
    let data = sequences();
    let before = trainer.sft_loss(&data, 256).unwrap();
    let mut last = None;
    for _ in 0..25 {
        last = Some(trainer.sft_step(&data, 256, 25).unwrap());
    }
    let after = trainer.sft_loss(&data, 256).unwrap();
    assert!(after < before * 0.7, "loss {before} → {after}");
    let stats = last.unwrap();
    assert_eq!(stats.tokens, 36);
    assert!(stats.grad_norm > 0.0 && stats.lr > 0.0);
    assert_eq!(trainer.step(), 25);
}

#[test]
fn micro_batching_gives_the_same_update_as_one_pass() {
    let data = sequences();
    let run = |micro: usize| {
        let policy = Policy::random(&Preset::Micro.config(), 9, &Device::Cpu).unwrap();
        let mut trainer = Trainer::new(
            policy,
            OptimConfig {
                micro_batch_size: micro,
                ..optim()
            },
        )
        .unwrap();
        trainer.sft_step(&data, 256, 1).unwrap();
        trainer.sft_loss(&data, 256).unwrap()
    };
    let (whole, split) = (run(6), run(2));
    assert!((whole - split).abs() < 1e-4, "{whole} vs {split}");
}

#[test]
fn packed_sft_gives_the_same_loss_and_update_as_padded_sft() {
    // Lengths 5..=13 tokens, packed into rows of 24: several per row.
    let data: Vec<Sequence> = (0..9u32)
        .map(|i| Sequence {
            tokens: (0..5 + i).map(|j| (i * 11 + j * 5) % 250).collect(),
            prompt_len: 2 + (i as usize % 3),
        })
        .collect();
    let rows = r1_learner::train::PackedBatch::plan(&data, 24);
    assert!(rows.len() < data.len(), "{rows:?}");
    let run = |packed: bool| {
        let policy = Policy::random(&Preset::Micro.config(), 4, &Device::Cpu).unwrap();
        let mut trainer = Trainer::new(policy, optim()).unwrap();
        let stats = if packed {
            trainer.sft_step_packed(&data, 256, 24, 1).unwrap()
        } else {
            trainer.sft_step(&data, 256, 1).unwrap()
        };
        (stats, trainer.sft_loss(&data, 256).unwrap())
    };
    let ((padded, padded_after), (packed, packed_after)) = (run(false), run(true));
    assert_eq!(packed.tokens, padded.tokens);
    assert!(
        (packed.loss - padded.loss).abs() < 1e-4,
        "{} vs {}",
        packed.loss,
        padded.loss
    );
    assert!(
        (packed.grad_norm - padded.grad_norm).abs() < 1e-4 * padded.grad_norm,
        "{} vs {}",
        packed.grad_norm,
        padded.grad_norm
    );
    assert!(
        (packed_after - padded_after).abs() < 1e-4,
        "{packed_after} vs {padded_after}"
    );
}

fn groups() -> Vec<TrainGroup> {
    let seqs = sequences();
    vec![
        TrainGroup {
            sequences: seqs[0..3].to_vec(),
            rewards: vec![1.0, 0.0, 0.0],
            correct: vec![true, false, false],
            sampler_logprobs: vec![vec![-1.0; 6]; 3],
        },
        TrainGroup {
            sequences: seqs[3..6].to_vec(),
            rewards: vec![1.0, 1.0, 1.0],
            correct: vec![true, true, true],
            sampler_logprobs: vec![vec![-1.0; 6]; 3],
        },
    ]
}

#[test]
fn grpo_raises_the_likelihood_of_rewarded_completions_and_skips_uniform_groups() {
    let policy = Policy::random(&Preset::Micro.config(), 5, &Device::Cpu).unwrap();
    let mut trainer = Trainer::new(policy, optim()).unwrap();
    let config = GrpoConfig {
        group_size: 3,
        ..GrpoConfig::default()
    };
    let rewarded = vec![sequences()[0].clone()];
    let punished = vec![sequences()[1].clone()];
    let (good_before, bad_before) = (
        trainer.sft_loss(&rewarded, 256).unwrap(),
        trainer.sft_loss(&punished, 256).unwrap(),
    );
    let mut stats = None;
    for _ in 0..5 {
        stats = Some(trainer.grpo_step(&groups(), &config, None, 256, 5).unwrap());
    }
    let stats = stats.unwrap();
    assert_eq!(stats.groups_used, 1);
    assert_eq!(stats.groups_dropped_uniform, 1);
    assert!((stats.accuracy - 4.0 / 6.0).abs() < 1e-9);
    assert!(stats.entropy > 0.0);
    assert!(stats.logprob_mismatch > 0.0);
    let (good_after, bad_after) = (
        trainer.sft_loss(&rewarded, 256).unwrap(),
        trainer.sft_loss(&punished, 256).unwrap(),
    );
    assert!(
        good_after < good_before,
        "rewarded NLL {good_before} → {good_after}"
    );
    assert!(
        bad_after > bad_before,
        "punished NLL {bad_before} → {bad_after}"
    );
}

/// [`groups`] with the sampler's log-probs set to `trainer`'s own.
fn groups_sampled_by(trainer: &Trainer) -> Vec<TrainGroup> {
    groups()
        .into_iter()
        .map(|mut group| {
            let batch = Batch::new(&group.sequences, 256, &Device::Cpu).unwrap();
            let own = trainer.policy().model.token_logprobs(&batch.ids).unwrap();
            group.sampler_logprobs = batch.completion_values(&own).unwrap();
            group
        })
        .collect()
}

#[test]
fn the_sampler_as_old_policy_matches_the_learner_when_they_agree_and_later_updates_clip() {
    let run = |old_policy: OldPolicy, updates_per_batch: u32, lr: f64| {
        let policy = Policy::random(&Preset::Micro.config(), 5, &Device::Cpu).unwrap();
        let mut trainer = Trainer::new(policy, OptimConfig { lr, ..optim() }).unwrap();
        let config = GrpoConfig {
            group_size: 3,
            old_policy,
            updates_per_batch,
            ..GrpoConfig::default()
        };
        let groups = groups_sampled_by(&trainer);
        let stats = trainer.grpo_step(&groups, &config, None, 256, 1).unwrap();
        let after = trainer.sft_loss(&sequences()[0..3], 256).unwrap();
        (stats, after, trainer.step())
    };
    let (learner, learner_after, _) = run(OldPolicy::Learner, 1, 3e-3);
    let (sampler, sampler_after, steps) = run(OldPolicy::Sampler, 1, 3e-3);
    assert!(
        sampler.logprob_mismatch < 1e-5,
        "{}",
        sampler.logprob_mismatch
    );
    assert!((learner.loss - sampler.loss).abs() < 1e-5);
    assert!(
        (learner_after - sampler_after).abs() < 1e-5,
        "{learner_after} vs {sampler_after}"
    );
    assert_eq!(steps, 1);
    assert_eq!(sampler.clip_fraction, 0.0);
    // Later updates on the same batch move away from the old policy and
    // clip; each is an optimizer step.
    let (epochs, _, steps) = run(OldPolicy::Sampler, 4, 3e-2);
    assert_eq!(steps, 4);
    assert!(epochs.clip_fraction > 0.0, "{epochs:?}");
}

#[test]
fn resuming_from_a_checkpoint_gives_the_same_next_step_loss() {
    let dir = tempfile::tempdir().unwrap();
    let data = sequences();
    let policy = Policy::random(&Preset::Micro.config(), 21, &Device::Cpu).unwrap();
    let mut trainer = Trainer::new(policy, optim()).unwrap();
    for _ in 0..3 {
        trainer.sft_step(&data, 256, 10).unwrap();
    }
    let state = TrainState {
        stage: "sft".into(),
        step: trainer.step(),
        policy_version: 0,
        data_cursor: 18,
        seed: 21,
    };
    let saved = checkpoint::save(dir.path(), &Preset::Micro.files(), &trainer, &state).unwrap();
    assert_eq!(checkpoint::latest(dir.path()).unwrap(), saved);
    let uninterrupted = trainer.sft_step(&data, 256, 10).unwrap().loss;
    let after_uninterrupted = trainer.sft_loss(&data, 256).unwrap();

    let (mut resumed, resumed_state, _) = checkpoint::load(&saved, optim(), &Device::Cpu).unwrap();
    assert_eq!(resumed_state, state);
    assert_eq!(resumed.step(), 3);
    let again = resumed.sft_step(&data, 256, 10).unwrap().loss;
    assert_eq!(
        uninterrupted.to_bits(),
        again.to_bits(),
        "{uninterrupted} vs {again}"
    );
    assert_eq!(
        after_uninterrupted.to_bits(),
        resumed.sft_loss(&data, 256).unwrap().to_bits()
    );
}

#[test]
fn sft_datasets_load_prompt_response_and_chat_lines_and_name_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("micro");
    r1_learner::preset::init(Preset::Micro, &model, 1).unwrap();
    let tokenizer = r1_learner::tokenizer::TextTokenizer::load(&model).unwrap();
    let data = dir.path().join("data.jsonl");
    std::fs::write(
        &data,
        concat!(
            r#"{"prompt": "User: 1+1?\nAssistant: <think>", "response": "1+1=2.</think> <answer>2</answer>"}"#,
            "\n\n",
            r#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}"#,
            "\n"
        ),
    )
    .unwrap();
    let sequences = r1_learner::train::data::load_sft_jsonl(&data, &tokenizer, 512).unwrap();
    assert_eq!(sequences.len(), 2);
    let response = tokenizer
        .decode(&sequences[1].tokens[sequences[1].prompt_len..])
        .unwrap();
    assert_eq!(response, "hello");
    assert_eq!(*sequences[0].tokens.last().unwrap(), tokenizer.eos());

    std::fs::write(
        &data,
        "{\"prompt\": \"a\", \"response\": \"b\"}\n{\"prompt\": 3}\n",
    )
    .unwrap();
    let error = r1_learner::train::data::load_sft_jsonl(&data, &tokenizer, 512).unwrap_err();
    assert_eq!(error.line, 2);
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}:2:", data.display())),
        "{error}"
    );
}
