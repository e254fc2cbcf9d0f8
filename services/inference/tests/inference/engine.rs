//! mistral.rs with our sampler agrees with the learner's forward pass, also
//! for batched decoding (the regression test of the patched CPU attention).

use candle_core::{Device, Tensor};
use r1_inference::engine::{Engine, EngineError, GenerateParams};
use r1_learner::model::llama::token_logprobs_from_logits;
use r1_learner::model::weights::load_policy;
use r1_learner::preset::{self, Preset};
use r1_proto::domain::Completion;

/// Log-probs of `completion` after `prompt` under the learner's model, at
/// sampling temperature `t`.
fn reference_logprobs(
    dir: &std::path::Path,
    prompt: &[u32],
    completion: &[u32],
    t: f64,
) -> Vec<f32> {
    let policy = load_policy(dir, &Device::Cpu).unwrap();
    let all: Vec<u32> = prompt.iter().chain(completion).copied().collect();
    let ids = Tensor::new(all.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let n = all.len();
    let logits = (policy
        .model
        .logits(&ids.narrow(1, 0, n - 1).unwrap())
        .unwrap()
        / t)
        .unwrap();
    let targets = ids.narrow(1, 1, n - 1).unwrap().contiguous().unwrap();
    let lp: Vec<Vec<f32>> = token_logprobs_from_logits(&logits, &targets)
        .unwrap()
        .to_vec2()
        .unwrap();
    lp[0][prompt.len() - 1..].to_vec()
}

/// The largest difference, in nats, between the log-prob the sampler gave a
/// token of `completions` and the learner's for the same token.
fn largest_gap(dir: &std::path::Path, prompt: &[u32], completions: &[Completion]) -> f32 {
    let mut worst = 0f32;
    for completion in completions {
        assert_eq!(completion.token_ids.len(), completion.logprobs.len());
        let reference = reference_logprobs(dir, prompt, &completion.token_ids, 1.0);
        for (a, b) in completion.logprobs.iter().zip(&reference) {
            worst = worst.max((a - b).abs());
        }
    }
    worst
}

/// A micro model with random weights from `seed`, in a temporary folder
/// (kept while the returned guard lives).
fn micro_model(seed: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("micro");
    preset::init(Preset::Micro, &model, seed).unwrap();
    (dir, model)
}

fn params(seed: u64) -> GenerateParams {
    GenerateParams {
        temperature: 1.0,
        top_p: 1.0,
        top_k: None,
        max_new_tokens: 24,
        stop: vec![],
        seed,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn batched_samples_match_the_learner_forward_pass_token_by_token() {
    let (_dir, model) = micro_model(7);
    let engine = Engine::load(&model, 1).await.unwrap();
    let prompt = engine
        .tokenizer()
        .encode("User: What is 12 + 30?\nAssistant: <think>")
        .unwrap();

    // Eight samples decoded together as one batch.
    let group = engine.generate(&prompt, 8, &params(100)).await.unwrap();
    assert_eq!(group.len(), 8);
    let distinct: std::collections::HashSet<_> =
        group.iter().map(|c| c.token_ids.clone()).collect();
    assert!(distinct.len() > 1, "different seeds gave identical samples");
    assert!(group.iter().all(|c| !c.token_ids.is_empty()));
    let compared: usize = group.iter().map(|c| c.token_ids.len()).sum();
    let worst = largest_gap(&model, &prompt, &group);
    // f32 forward passes of different kernels: agreement to ~1e-5 nats.
    assert!(
        worst < 1e-3,
        "max |sampler − learner| log-prob {worst} over {compared} tokens"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn seeds_make_groups_reproducible_and_limits_are_respected() {
    let (_dir, model) = micro_model(8);
    let engine = Engine::load(&model, 3).await.unwrap();
    assert_eq!(engine.version(), 3);
    let prompt = engine
        .tokenizer()
        .encode("User: 1+1?\nAssistant: <think>")
        .unwrap();
    let a = engine.generate(&prompt, 3, &params(5)).await.unwrap();
    let b = engine.generate(&prompt, 3, &params(5)).await.unwrap();
    assert_eq!(
        a.iter().map(|c| &c.token_ids).collect::<Vec<_>>(),
        b.iter().map(|c| &c.token_ids).collect::<Vec<_>>()
    );
    for c in &a {
        assert!(c.token_ids.len() <= 24);
    }
    let greedy = GenerateParams {
        temperature: 0.0,
        ..params(1)
    };
    let g1 = engine.generate(&prompt, 2, &greedy).await.unwrap();
    assert_eq!(g1[0].token_ids, g1[1].token_ids, "greedy ignores the seed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_file_is_named() {
    let (_dir, model) = micro_model(1);
    std::fs::remove_file(model.join("generation_config.json")).unwrap();
    let error = Engine::load(&model, 1).await.unwrap_err();
    assert!(
        matches!(&error, EngineError::MissingFile { file, .. } if file == "generation_config.json"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_greedy_completion_is_the_same_alone_and_batched_with_prompts_of_other_lengths() {
    let (_dir, model) = micro_model(12);
    let engine = Engine::load(&model, 1).await.unwrap();
    let greedy = GenerateParams {
        temperature: 0.0,
        ..params(0)
    };
    let questions: Vec<String> = (0..12)
        .map(|i| {
            format!(
                "User: What is {}+{}?\nAssistant: <think>",
                i * 7,
                i * 130 + 5
            )
        })
        .collect();
    let prompts: Vec<Vec<u32>> = questions
        .iter()
        .map(|q| engine.tokenizer().encode(q).unwrap())
        .collect();
    // Batched first, on a fresh engine, and one at a time on another: no
    // request can reuse state the other way of running left behind (an
    // engine whose cache was warmed one prompt at a time hid a defect of
    // mistral.rs's prefix cache that only cold batches show).
    let together =
        futures::future::try_join_all(prompts.iter().map(|p| engine.generate(p, 1, &greedy)))
            .await
            .unwrap();
    let engine = Engine::load(&model, 1).await.unwrap();
    let mut alone = Vec::new();
    for p in &prompts {
        alone.push(engine.generate(p, 1, &greedy).await.unwrap().remove(0));
    }
    for (i, (a, b)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(
            a.token_ids, b[0].token_ids,
            "prompt {i} decodes differently in a batch"
        );
    }
}

/// Requests that arrive while others decode, staggered the way an
/// evaluation or a GRPO feeder sends them (a bounded number in flight, a new
/// one as soon as one finishes), sharing a long prompt prefix with requests
/// that already finished. Each completion must carry the log-probs of the
/// learner's forward pass. With mistral.rs 0.8.1's prefix cache on, requests
/// admitted this way reuse cached KV that does not belong to them; the
/// engine keeps that cache off.
#[tokio::test(flavor = "multi_thread")]
async fn requests_arriving_while_others_decode_match_the_learner_forward_pass() {
    use futures::StreamExt;
    let (_dir, model) = micro_model(21);
    let engine = Engine::load(&model, 1).await.unwrap();
    let jobs: Vec<(Vec<u32>, GenerateParams)> = (0..16u64)
        .map(|i| {
            let question = format!(
                "User: Work it out step by step. What is {}+{}?\nAssistant: <think>",
                10 + i % 4,
                20 + i
            );
            let params = GenerateParams {
                max_new_tokens: 6 + 5 * (i as usize % 4),
                ..params(40 + i)
            };
            (engine.tokenizer().encode(&question).unwrap(), params)
        })
        .collect();
    let results: Vec<_> = futures::stream::iter(jobs.iter().map(|(prompt, params)| {
        let engine = &engine;
        async move { engine.generate(prompt, 2, params).await.unwrap() }
    }))
    .buffered(4)
    .collect()
    .await;
    let mut worst = (0f32, 0usize);
    for (i, ((prompt, _), group)) in jobs.iter().zip(&results).enumerate() {
        let gap = largest_gap(&model, prompt, group);
        if gap > worst.0 {
            worst = (gap, i);
        }
    }
    assert!(
        worst.0 < 1e-3,
        "request {} differs from the learner's forward pass by {} nats",
        worst.1,
        worst.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn qwen2_and_qwen3_checkpoints_sample_with_the_learners_log_probs() {
    use r1_learner::model::{ModelType, Policy};
    for model_type in [ModelType::Qwen2, ModelType::Qwen3] {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m");
        let mut files = Preset::Micro.files();
        files.config.model_type = model_type;
        files.config.head_dim = Some(16);
        let policy = Policy::random(&files.config, 3, &Device::Cpu).unwrap();
        files.write(&model, &policy).unwrap();
        let engine = Engine::load(&model, 1).await.unwrap();
        let prompt = engine
            .tokenizer()
            .encode("User: What is 3+4?\nAssistant: <think>")
            .unwrap();
        let group = engine.generate(&prompt, 4, &params(11)).await.unwrap();
        let worst = largest_gap(&model, &prompt, &group);
        assert!(
            worst < 1e-3,
            "{model_type:?}: max log-prob difference {worst}"
        );
    }
}
