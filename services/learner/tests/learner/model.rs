//! The decoder: gradients, weights on disk, tokenizer.

use candle_core::{DType, Device, Tensor};
use r1_learner::model::Policy;
use r1_learner::model::weights::load_policy;
use r1_learner::preset::{Preset, TAGS};
use r1_learner::tokenizer::TextTokenizer;

fn batch(device: &Device) -> Tensor {
    Tensor::new(
        &[
            [1u32, 5, 9, 33, 200, 7, 256, 12],
            [3, 3, 80, 120, 5, 6, 7, 8],
        ],
        device,
    )
    .unwrap()
}

fn loss(policy: &Policy, ids: &Tensor) -> Tensor {
    policy
        .model
        .token_logprobs(ids)
        .unwrap()
        .mean_all()
        .unwrap()
        .neg()
        .unwrap()
}

#[test]
fn autograd_gradients_match_finite_differences() {
    let device = Device::Cpu;
    let policy = Policy::random(&Preset::Micro.config(), 3, &device).unwrap();
    let ids = batch(&device);
    let grads = loss(&policy, &ids).backward().unwrap();
    // One coordinate of several kinds of parameter.
    let probes = [
        ("model.embed_tokens.weight", 5 * 64 + 3),
        ("model.layers.0.self_attn.q_proj.weight", 17),
        ("model.layers.1.self_attn.v_proj.weight", 40),
        ("model.layers.0.mlp.down_proj.weight", 99),
        ("model.layers.1.input_layernorm.weight", 7),
        ("model.norm.weight", 11),
    ];
    let vars = policy.sorted_vars();
    let eps = 1e-2f32;
    for (name, index) in probes {
        let var = &vars.iter().find(|(n, _)| n == name).unwrap().1;
        let analytic: Vec<f32> = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"))
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let original: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let at = |delta: f32| {
            let mut values = original.clone();
            values[index] += delta;
            var.set(&Tensor::from_vec(values, var.shape(), &device).unwrap())
                .unwrap();
            let l = loss(&policy, &ids).to_scalar::<f32>().unwrap();
            var.set(&Tensor::from_vec(original.clone(), var.shape(), &device).unwrap())
                .unwrap();
            l
        };
        let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
        let a = analytic[index];
        // f32 central differences: absolute error ~1e-4 at this scale.
        assert!(
            (a - numeric).abs() <= 2e-4 + 0.05 * a.abs(),
            "{name}[{index}]: autograd {a}, finite differences {numeric}"
        );
    }
}

#[test]
fn a_saved_model_loads_back_bit_for_bit() {
    let device = Device::Cpu;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("micro");
    let policy = r1_learner::preset::init(Preset::Micro, &path, 11).unwrap();
    for file in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
        "model.safetensors",
    ] {
        assert!(path.join(file).is_file(), "{file} missing");
    }
    let loaded = load_policy(&path, &device).unwrap();
    let before = policy.tensors();
    let after = loaded.tensors();
    assert_eq!(before.len(), after.len());
    for (name, t) in &before {
        let a: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = after[name].flatten_all().unwrap().to_vec1().unwrap();
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{name} differs"
        );
    }
    let ids = batch(&device);
    let la: Vec<f32> = policy
        .model
        .logits(&ids)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let lb: Vec<f32> = loaded
        .model
        .logits(&ids)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(la, lb);
}

#[test]
fn same_seed_gives_the_same_model_and_another_seed_a_different_one() {
    let device = Device::Cpu;
    let a = Policy::random(&Preset::Micro.config(), 1, &device)
        .unwrap()
        .tensors();
    let b = Policy::random(&Preset::Micro.config(), 1, &device)
        .unwrap()
        .tensors();
    let c = Policy::random(&Preset::Micro.config(), 2, &device)
        .unwrap()
        .tensors();
    let name = "model.layers.0.self_attn.q_proj.weight";
    let v = |t: &Tensor| {
        t.to_dtype(DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert_eq!(v(&a[name]), v(&b[name]));
    assert_ne!(v(&a[name]), v(&c[name]));
}

#[test]
fn the_tiny_tokenizer_round_trips_text_and_keeps_tags_as_single_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("micro");
    r1_learner::preset::init(Preset::Micro, &path, 1).unwrap();
    let tokenizer = TextTokenizer::load(&path).unwrap();
    let text = "<think>12 + 7: ones 2+7=9</think> <answer>19</answer> é€";
    let ids = tokenizer.encode(text).unwrap();
    assert_eq!(tokenizer.decode(&ids).unwrap(), text);
    for tag in TAGS {
        assert_eq!(tokenizer.encode(tag).unwrap().len(), 1, "{tag}");
    }
    assert_eq!(tokenizer.eos(), 256);
    let chat = tokenizer
        .apply_chat_template(
            &[r1_learner::tokenizer::Message {
                role: "user".into(),
                content: "hi".into(),
            }],
            true,
        )
        .unwrap();
    assert_eq!(chat, "user: hi\nassistant: ");
}

/// The pinned SmolLM2 GGUF, when scripts/fetch-artefacts has cached it.
fn smollm2_gguf() -> Option<std::path::PathBuf> {
    let cache = std::env::var_os("R1_CACHE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.r1-cache")
        });
    let path = cache.join("artefacts/SmolLM2-135M-Instruct.Q4_1.gguf");
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "\n*** SmolLM2 GGUF not cached ({}); run scripts/fetch-artefacts. Import test skipped. ***\n",
            path.display()
        );
        None
    }
}

#[test]
fn imported_smollm2_completes_the_capital_of_france_with_paris() {
    let Some(gguf) = smollm2_gguf() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("smollm2");
    let config = r1_learner::import::import_gguf(&gguf, &out).unwrap();
    assert_eq!(
        (
            config.num_hidden_layers,
            config.hidden_size,
            config.vocab_size
        ),
        (30, 576, 49152)
    );
    assert!(config.tie_word_embeddings);
    let tokenizer = TextTokenizer::load(&out).unwrap();
    assert_eq!(tokenizer.bos(), Some(1));
    assert_eq!(tokenizer.eos(), 2);
    let policy = load_policy(&out, &Device::Cpu).unwrap();
    let mut ids = tokenizer.encode("The capital of France is").unwrap();
    let prompt_len = ids.len();
    for _ in 0..2 {
        let input = Tensor::new(ids.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits = policy.model.logits(&input).unwrap();
        let last: Vec<f32> = logits
            .squeeze(0)
            .unwrap()
            .get(ids.len() - 1)
            .unwrap()
            .to_vec1()
            .unwrap();
        let next = (0..last.len())
            .max_by(|a, b| last[*a].total_cmp(&last[*b]))
            .unwrap();
        ids.push(next as u32);
    }
    let completion = tokenizer.decode(&ids[prompt_len..]).unwrap();
    assert!(completion.starts_with(" Paris"), "{completion:?}");
    // The chat template came along.
    let chat = tokenizer
        .apply_chat_template(
            &[r1_learner::tokenizer::Message {
                role: "user".into(),
                content: "Hi".into(),
            }],
            true,
        )
        .unwrap();
    assert!(chat.contains("<|im_start|>user\nHi<|im_end|>"), "{chat}");
}
