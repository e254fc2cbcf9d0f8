use super::*;
use crate::pb;

fn job() -> pb::PromptJob {
    pb::PromptJob {
        id: "job-1".into(),
        prompt: Some(pb::Prompt {
            kind: Some(pb::prompt::Kind::Text("What is 2+2?".into())),
            format: pb::PromptFormat::R1.into(),
        }),
        task: Some(pb::Task {
            kind: Some(pb::task::Kind::Math(pb::MathTask {
                gold_answer: "4".into(),
            })),
            language: String::new(),
            reward_profile: String::new(),
        }),
        group_size: 2,
        sampling: Some(pb::SamplingParams {
            temperature: 0.8,
            top_p: 0.95,
            top_k: 0,
            max_new_tokens: 32,
            stop: vec!["</answer>".into()],
            seed: 1,
        }),
        min_policy_version: 3,
        run_id: "run".into(),
    }
}

fn group() -> pb::Group {
    let completion = pb::Completion {
        text: "<answer>4</answer>".into(),
        token_ids: vec![5, 6],
        logprobs: vec![-0.1, -2.0],
        finish_reason: pb::FinishReason::Stop.into(),
    };
    pb::Group {
        job: Some(job()),
        prompt_token_ids: vec![1, 2, 3],
        completions: vec![completion.clone(), completion],
        policy_version: 3,
        sampler_id: "inference-0".into(),
    }
}

fn error_field<T: std::fmt::Debug>(result: Result<T>) -> String {
    result.expect_err("conversion should fail").field
}

#[test]
fn valid_job_round_trips_through_the_wire_type() {
    let domain = PromptJob::try_from(job()).unwrap();
    assert_eq!(domain.sampling.top_k, None);
    assert_eq!(domain.prompt.format, PromptFormat::R1);
    assert_eq!(pb::PromptJob::from(domain), job());
}

#[test]
fn valid_group_round_trips_through_the_wire_type() {
    let domain = Group::try_from(group()).unwrap();
    assert_eq!(domain.id(), "job-1");
    assert_eq!(pb::Group::from(domain), group());
}

#[test]
fn missing_nested_message_names_its_field() {
    let mut wire = job();
    wire.sampling = None;
    let error = PromptJob::try_from(wire).unwrap_err();
    assert_eq!(error.field, "sampling");
    assert_eq!(error.to_string(), "field `sampling` is required");
}

#[test]
fn errors_deep_in_a_group_carry_the_full_path() {
    let mut wire = group();
    wire.job.as_mut().unwrap().sampling.as_mut().unwrap().top_p = 1.5;
    assert_eq!(error_field(Group::try_from(wire)), "job.sampling.top_p");

    let mut wire = group();
    wire.completions[1].logprobs.pop();
    assert_eq!(
        error_field(Group::try_from(wire)),
        "completions[1].logprobs"
    );

    let mut wire = group();
    wire.completions[0].logprobs[1] = 0.5;
    assert_eq!(
        error_field(Group::try_from(wire)),
        "completions[0].logprobs[1]"
    );
}

#[test]
fn out_of_range_values_are_rejected() {
    type Mutation = fn(&mut pb::PromptJob);
    let cases: Vec<(Mutation, &str)> = vec![
        (|j| j.group_size = 0, "group_size"),
        (|j| j.group_size = 100_000, "group_size"),
        (|j| j.id = "  ".into(), "id"),
        (|j| j.run_id.clear(), "run_id"),
        (
            |j| j.sampling.as_mut().unwrap().temperature = f32::NAN,
            "sampling.temperature",
        ),
        (
            |j| j.sampling.as_mut().unwrap().temperature = -1.0,
            "sampling.temperature",
        ),
        (
            |j| j.sampling.as_mut().unwrap().max_new_tokens = 0,
            "sampling.max_new_tokens",
        ),
        (
            |j| j.sampling.as_mut().unwrap().stop = vec![String::new()],
            "sampling.stop[0]",
        ),
        (|j| j.prompt.as_mut().unwrap().format = 99, "prompt.format"),
        (|j| j.prompt.as_mut().unwrap().kind = None, "prompt.kind"),
        (|j| j.task.as_mut().unwrap().kind = None, "task.kind"),
        (
            |j| {
                j.task.as_mut().unwrap().kind = Some(pb::task::Kind::Math(pb::MathTask {
                    gold_answer: String::new(),
                }))
            },
            "task.math.gold_answer",
        ),
        (
            |j| {
                j.task.as_mut().unwrap().kind = Some(pb::task::Kind::Code(pb::CodeTask {
                    language: "cobol".into(),
                    ..Default::default()
                }))
            },
            "task.code.language",
        ),
    ];
    for (mutate, field) in cases {
        let mut wire = job();
        mutate(&mut wire);
        assert_eq!(error_field(PromptJob::try_from(wire)), field);
    }
}

#[test]
fn group_must_hold_group_size_completions_sampled_recently_enough() {
    let mut wire = group();
    wire.completions.pop();
    assert_eq!(error_field(Group::try_from(wire)), "completions");

    let mut wire = group();
    wire.policy_version = 2;
    assert_eq!(error_field(Group::try_from(wire)), "policy_version");

    let mut wire = group();
    wire.completions[0].finish_reason = 0;
    assert_eq!(
        error_field(Group::try_from(wire)),
        "completions[0].finish_reason"
    );
}

#[test]
fn scored_group_needs_one_finite_score_per_completion() {
    let score = pb::Score {
        total: 1.0,
        components: vec![pb::ScoreComponent {
            name: "accuracy".into(),
            value: 1.0,
            weight: 1.0,
        }],
        detail: String::new(),
    };
    let scored = pb::ScoredGroup {
        group: Some(group()),
        scores: vec![score.clone(), score.clone()],
        scorer_id: "reward-0".into(),
    };
    assert!(ScoredGroup::try_from(scored.clone()).is_ok());

    let mut short = scored.clone();
    short.scores.pop();
    assert_eq!(error_field(ScoredGroup::try_from(short)), "scores");

    let mut infinite = scored.clone();
    infinite.scores[1].total = f64::INFINITY;
    assert_eq!(
        error_field(ScoredGroup::try_from(infinite)),
        "scores[1].total"
    );

    let mut unnamed = scored;
    unnamed.scores[0].components[0].name.clear();
    assert_eq!(
        error_field(ScoredGroup::try_from(unnamed)),
        "scores[0].components[0].name"
    );
}

#[test]
fn policy_versions_start_at_one_and_name_their_weights() {
    let wire = pb::PolicyVersion {
        number: 0,
        weights_uri: "/w".into(),
        checksum: String::new(),
    };
    assert_eq!(error_field(PolicyVersion::try_from(wire.clone())), "number");
    let wire = pb::PolicyVersion {
        number: 1,
        weights_uri: String::new(),
        ..wire
    };
    assert_eq!(error_field(PolicyVersion::try_from(wire)), "weights_uri");
}

#[test]
fn contract_errors_become_invalid_argument() {
    let status = tonic::Status::from(ContractError::missing("job.id"));
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("job.id"));
}
