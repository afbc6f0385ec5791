//! OpenAI embeddings and their copies.

use super::*;

#[test]
fn embeddings_have_a_prompt_and_input_tokens_only() {
    let req = request_to(
        "/v1/embeddings",
        r#"{"input":"The food was delicious","model":"text-embedding-3-small","encoding_format":"float"}"#,
    );
    let body = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[-0.0069,-0.0053,0.0012]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}}"#;
    let call = interpret(Format::OpenAiEmbeddings, &req, &response("application/json", body));
    assert_eq!(call.operation, "embeddings");
    assert_eq!(
        (call.model.as_deref(), call.prompt.as_str()),
        (Some("text-embedding-3-small"), "The food was delicious")
    );
    assert_eq!((call.input_tokens, call.output_tokens), (Some(5), None));
    assert!(call.completion.is_empty() && !call.streamed);
}

#[test]
fn several_inputs_token_ids_and_mistral_and_together_bodies() {
    let req = request_to("/v1/embeddings", r#"{"model":"mistral-embed","input":["first","second"]}"#);
    let body = r#"{"id":"e1","object":"list","data":[{"object":"embedding","embedding":[0.1],"index":0},{"object":"embedding","embedding":[0.2],"index":1}],"model":"mistral-embed","usage":{"prompt_tokens":6,"total_tokens":6,"completion_tokens":0}}"#;
    let call = interpret(Format::OpenAiEmbeddings, &req, &response("application/json", body));
    assert_eq!((call.prompt.as_str(), call.input_tokens), ("first\nsecond", Some(6)));

    let req = request_to("/v1/embeddings", r#"{"model":"text-embedding-3-large","input":[[8505,3290]]}"#);
    let call = interpret(Format::OpenAiEmbeddings, &req, &response("application/json", "{}"));
    assert_eq!((call.prompt.as_str(), call.model.as_deref()), ("", Some("text-embedding-3-large")));

    // Together answers without usage.
    let req = request_to("/v1/embeddings", r#"{"model":"BAAI/bge-large-en-v1.5","input":"hi"}"#);
    let body = r#"{"object":"list","data":[{"object":"embedding","embedding":[0.5],"index":0}],"model":"BAAI/bge-large-en-v1.5","request_id":"8f"}"#;
    let call = interpret(Format::OpenAiEmbeddings, &req, &response("application/json", body));
    assert_eq!((call.prompt.as_str(), call.input_tokens), ("hi", None));
}
