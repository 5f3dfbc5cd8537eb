//! The OpenAPI 3 document of the HTTP routes (`GET /openapi.json`).
//!
//! Nothing in it is written by hand twice: the paths, methods and payloads
//! come from the route table the router is built from (`http::ROUTES`),
//! and every schema of a slant.v1 message from the proto's descriptor set
//! (the one server reflection serves), with the proto's comments as
//! descriptions and the proto3 JSON mapping's names and types (lowerCamel
//! names, 64-bit integers as strings, maps as objects). The tests hold
//! the schemas to what pbjson actually writes, and tests/http.rs calls
//! every documented route.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorSet};
use serde_json::{json, Map, Value};

use super::http::{Payload, Route, ROUTES};
use super::server::FILE_DESCRIPTOR_SET;

const PACKAGE: &str = "slant.v1";

/// The document, built once.
pub(crate) fn document() -> Result<&'static [u8], String> {
    static DOC: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    DOC.get_or_init(|| {
        build().and_then(|doc| serde_json::to_vec_pretty(&doc).map_err(|e| e.to_string()))
    })
    .as_deref()
    .map_err(Clone::clone)
}

/// The slant.v1 messages of the descriptor set, with their comments.
struct Messages {
    /// Short name → (message, its leading comment, its fields' comments).
    by_name: BTreeMap<String, (DescriptorProto, String, Vec<String>)>,
}

fn clean(comment: Option<&str>) -> String {
    comment
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Messages {
    fn load() -> Result<Self, String> {
        let set = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET)
            .map_err(|e| format!("the descriptor set does not decode: {e}"))?;
        let mut by_name = BTreeMap::new();
        for file in set
            .file
            .iter()
            .filter(|f| f.package.as_deref() == Some(PACKAGE))
        {
            let comments: BTreeMap<Vec<i32>, &str> = file
                .source_code_info
                .iter()
                .flat_map(|info| &info.location)
                .filter_map(|l| Some((l.path.clone(), l.leading_comments.as_deref()?)))
                .collect();
            for (i, message) in file.message_type.iter().enumerate() {
                let i = i as i32;
                let doc = clean(comments.get(&vec![4, i]).copied());
                let fields = (0..message.field.len() as i32)
                    .map(|j| clean(comments.get(&vec![4, i, 2, j]).copied()))
                    .collect();
                by_name.insert(message.name().to_string(), (message.clone(), doc, fields));
            }
        }
        if by_name.is_empty() {
            return Err(format!("the descriptor set has no {PACKAGE} messages"));
        }
        Ok(Self { by_name })
    }

    fn get(&self, name: &str) -> Result<&(DescriptorProto, String, Vec<String>), String> {
        self.by_name
            .get(name)
            .ok_or_else(|| format!("{PACKAGE}.{name} is not in the descriptor set"))
    }

    /// A message's schema in the proto3 JSON mapping.
    fn schema(&self, name: &str) -> Result<Value, String> {
        let (message, doc, docs) = self.get(name)?;
        let mut properties = Map::new();
        for (field, doc) in message.field.iter().zip(docs) {
            let mut schema = field_schema(message, field)?;
            if let (Some(obj), false) = (schema.as_object_mut(), doc.is_empty()) {
                if obj.contains_key("$ref") {
                    // A $ref takes no siblings in OpenAPI 3.0.
                    schema = json!({"allOf": [schema], "description": doc});
                } else {
                    obj.insert("description".into(), json!(doc));
                }
            }
            properties.insert(json_name(field), schema);
        }
        let mut schema =
            json!({"type": "object", "properties": properties, "additionalProperties": false});
        if !doc.is_empty() {
            schema["description"] = json!(doc);
        }
        Ok(schema)
    }
}

/// The field's name in the proto3 JSON mapping (lowerCamelCase).
fn json_name(field: &FieldDescriptorProto) -> String {
    if let Some(name) = &field.json_name {
        return name.clone();
    }
    let mut out = String::new();
    let mut upper = false;
    for c in field.name().chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A scalar or message type's schema in the proto3 JSON mapping.
fn type_schema(field: &FieldDescriptorProto) -> Result<Value, String> {
    Ok(match field.r#type() {
        Type::Double | Type::Float => json!({"type": "number", "format": "double"}),
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => {
            json!({"type": "integer", "format": "int32"})
        }
        Type::Uint32 | Type::Fixed32 => {
            json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": u32::MAX})
        }
        // 64-bit integers are strings in the proto3 JSON mapping.
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => json!({"type": "string", "format": "int64"}),
        Type::Uint64 | Type::Fixed64 => json!({"type": "string", "format": "uint64"}),
        Type::Bool => json!({"type": "boolean"}),
        Type::String => json!({"type": "string"}),
        Type::Bytes => json!({"type": "string", "format": "byte"}),
        Type::Enum => json!({"type": "string"}),
        Type::Message | Type::Group => {
            let full = field.type_name();
            let short = full
                .strip_prefix(&format!(".{PACKAGE}."))
                .ok_or_else(|| format!("{full} is outside {PACKAGE}"))?;
            json!({"$ref": format!("#/components/schemas/{short}")})
        }
    })
}

fn field_schema(message: &DescriptorProto, field: &FieldDescriptorProto) -> Result<Value, String> {
    if field.r#type() == Type::Message {
        // A map field is a repeated nested *Entry message marked map_entry.
        let entry = field.type_name().rsplit('.').next().unwrap_or("");
        if let Some(nested) = message.nested_type.iter().find(|n| {
            n.name() == entry && n.options.as_ref().and_then(|o| o.map_entry) == Some(true)
        }) {
            let value = nested
                .field
                .iter()
                .find(|f| f.number() == 2)
                .ok_or_else(|| format!("map entry {entry} has no value field"))?;
            return Ok(json!({"type": "object", "additionalProperties": type_schema(value)?}));
        }
    }
    let item = type_schema(field)?;
    Ok(if field.label() == Label::Repeated {
        json!({"type": "array", "items": item})
    } else {
        item
    })
}

/// A JSON error body.
fn error_schema() -> Value {
    let codes: Vec<&str> = (0..17)
        .map(|c| super::metrics::code_name(tonic::Code::from_i32(c)))
        .collect();
    json!({
        "type": "object",
        "description": "A refusal: the gRPC status code's name and its message (naming the limit's flag for a limit).",
        "properties": {
            "code": {"type": "string", "enum": codes},
            "message": {"type": "string"},
        },
        "required": ["code", "message"],
    })
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

/// The HTTP statuses a route may answer besides 200, with what each means.
pub(crate) fn errors(route: &Route) -> Vec<(u16, &'static str)> {
    let mut out = vec![
        (405, "Another method than the route's"),
        (503, "The server is draining"),
    ];
    if route.scorer || matches!(route.path, "/healthz" | "/metrics") {
        out.push((401, "An API key is needed (`--api-keys`; health and metrics with `--protect-all`): send `authorization: Bearer KEY`"));
    }
    if route.scorer {
        out.push((429, "Shed load (max-concurrent-requests, max-concurrent-per-key, max-buffered-bytes, max-buffered-bytes-per-connection); `Retry-After` says when to retry"));
        out.push((504, "The deadline given in `grpc-timeout` passed"));
    }
    if matches!(route.request, Payload::Message(_) | Payload::Query(_)) {
        out.push((400, "A bad argument: the gRPC INVALID_ARGUMENT message (bad JSON, an unknown field or head, a passage or article over its limit, explain over max-explain)"));
        out.push((404, "No such model or version is loaded"));
    }
    if let Payload::Message(_) = route.request {
        out.push((408, "The request body stopped arriving (receive-timeout)"));
        out.push((413, "Too large: the body is over max-message-bytes, or the request over max-batch or max-contributions, or its answer over max-response-bytes"));
        out.push((415, "The body is not `application/json`"));
    }
    out.sort_unstable();
    out
}

fn operation(route: &Route, messages: &Messages) -> Result<Value, String> {
    let mut op = json!({
        "summary": route.summary,
        "operationId": route.path.trim_matches('/').replace(['/', '-', '.'], "_"),
    });
    let mut parameters = Vec::new();
    match route.request {
        Payload::Message(name) => {
            messages.get(name)?;
            op["requestBody"] = json!({"required": true, "content": json_content(reference(name))});
        }
        Payload::Query(name) => {
            let (message, _, docs) = messages.get(name)?;
            for (field, doc) in message.field.iter().zip(docs) {
                parameters.push(json!({
                    "name": field.name(),
                    "in": "query",
                    "required": false,
                    "description": doc,
                    "schema": type_schema(field)?,
                }));
            }
        }
        Payload::None | Payload::Health | Payload::Other(_) => {}
    }
    if route.scorer {
        parameters.push(json!({
            "name": "grpc-timeout",
            "in": "header",
            "required": false,
            "description": "The call's deadline, as in gRPC: up to 8 digits and a unit (H, M, S, m, u, n), e.g. 500m; 504 when it passes",
            "schema": {"type": "string", "pattern": "^[0-9]{1,8}[HMSmun]$"},
        }));
        op["security"] = json!([{"bearer": []}, {}]);
    }
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    let ok = match route.response {
        Payload::Message(name) => {
            messages.get(name)?;
            json!({"description": "OK", "content": json_content(reference(name))})
        }
        Payload::Health => {
            json!({"description": "Serving", "content": json_content(reference("Health"))})
        }
        Payload::Other(ct) => {
            json!({"description": "OK", "content": {ct: {"schema": {"type": "string"}}}})
        }
        Payload::None | Payload::Query(_) => json!({"description": "OK"}),
    };
    let mut responses = Map::new();
    responses.insert("200".into(), ok);
    for (status, why) in errors(route) {
        let schema = if route.response == Payload::Health && status == 503 {
            reference("Health")
        } else {
            reference("Error")
        };
        responses.insert(
            status.to_string(),
            json!({"description": why, "content": json_content(schema)}),
        );
    }
    op["responses"] = Value::Object(responses);
    Ok(op)
}

/// Builds the document.
pub(crate) fn build() -> Result<Value, String> {
    let messages = Messages::load()?;
    let mut schemas = Map::new();
    for name in messages.by_name.keys() {
        schemas.insert(name.clone(), messages.schema(name)?);
    }
    schemas.insert("Error".into(), error_schema());
    schemas.insert(
        "Health".into(),
        json!({
            "type": "object",
            "properties": {"status": {"type": "string", "enum": ["SERVING", "NOT_SERVING"]}},
            "required": ["status"],
        }),
    );
    let mut paths = Map::new();
    for route in &ROUTES {
        let method = if route.post { "post" } else { "get" };
        paths.insert(
            route.path.to_string(),
            json!({ method: operation(route, &messages)? }),
        );
    }
    Ok(json!({
        "openapi": "3.0.3",
        "info": {
            "title": "slant",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Scores news passages for sentiment, sensational framing, clickbait and misinformation. The JSON API is slant.v1's gRPC API in the proto3 JSON mapping (proto/slant/v1/slant.proto), on the same port as gRPC and gRPC-Web, with the same limits.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "With `slant serve --api-keys`"}},
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto;

    /// A default instance of every slant.v1 message, as pbjson writes it.
    fn written(name: &str) -> Option<Value> {
        macro_rules! each {
            ($($t:ident),*) => {
                match name {
                    $(stringify!($t) => serde_json::to_value(proto::$t::default()).ok(),)*
                    _ => None,
                }
            };
        }
        each!(
            ScoreRequest,
            ScoreResponse,
            PassageScore,
            HeadScore,
            LabelProbability,
            Contribution,
            Span,
            ArticleRequest,
            ScoredPassage,
            ArticleResponse,
            ModelInfoRequest,
            HeadInfo,
            ModelInfo,
            ListModelsRequest,
            ListModelsResponse,
            ModelVersions
        )
    }

    fn json_type(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_f64() => "number",
            Value::Number(_) => "integer",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    #[test]
    fn schemas_are_what_pbjson_writes() {
        let doc = build().unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let messages = Messages::load().unwrap();
        assert!(messages.by_name.len() >= 16);
        for name in messages.by_name.keys() {
            let Some(Value::Object(value)) = written(name) else {
                panic!("slant.v1.{name} is new: add it to `written`");
            };
            let props = schemas[name]["properties"].as_object().unwrap();
            for key in value.keys() {
                assert!(
                    props.contains_key(key),
                    "{name}.{key} is written, not documented"
                );
            }
            for (key, schema) in props {
                // An unset message field is left out; every other field is
                // written, defaults included.
                let message = schema.get("$ref").or(schema.get("allOf")).is_some();
                assert!(
                    value.contains_key(key) || message,
                    "{name}.{key} is documented, not written"
                );
            }
            for (key, v) in &value {
                let schema = &props[key];
                let expected = schema["type"]
                    .as_str()
                    .or_else(|| schema.get("$ref").or(schema.get("allOf")).map(|_| "object"))
                    .unwrap();
                let got = json_type(v);
                // Defaults: 0.0 is written as an integer-looking number;
                // an unset message is null or absent.
                let fits = got == expected
                    || (expected == "number" && got == "integer")
                    || (expected == "object" && got == "null");
                assert!(fits, "{name}.{key}: {got} written, {expected} documented");
            }
        }
    }

    #[test]
    fn a_set_message_field_is_written_under_its_documented_name() {
        let passage = proto::ScoredPassage {
            score: Some(proto::PassageScore::default()),
            ..Default::default()
        };
        let written = serde_json::to_value(passage).unwrap();
        let doc = build().unwrap();
        let props = doc["components"]["schemas"]["ScoredPassage"]["properties"]
            .as_object()
            .unwrap();
        let keys: Vec<&String> = written.as_object().unwrap().keys().collect();
        assert_eq!(keys, props.keys().collect::<Vec<_>>());
    }

    #[test]
    fn every_route_is_documented_once_with_its_method() {
        let doc = build().unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), ROUTES.len());
        for route in &ROUTES {
            let ops = paths[route.path].as_object().unwrap();
            let method = if route.post { "post" } else { "get" };
            assert_eq!(ops.keys().collect::<Vec<_>>(), [method], "{}", route.path);
            let responses = ops[method]["responses"].as_object().unwrap();
            let mut statuses: Vec<u16> = responses.keys().map(|k| k.parse().unwrap()).collect();
            statuses.sort_unstable();
            let mut expected: Vec<u16> = errors(route).into_iter().map(|(s, _)| s).collect();
            expected.push(200);
            expected.sort_unstable();
            assert_eq!(statuses, expected, "{}", route.path);
        }
        // The query parameters are ModelInfoRequest's fields.
        let params: Vec<&str> = doc["paths"]["/v1/model"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(params, ["model", "model_version"]);
        // Comments come along from the proto.
        let passages = &doc["components"]["schemas"]["ScoreRequest"]["properties"]["passages"];
        assert!(
            passages["description"].as_str().unwrap().contains("UTF-8"),
            "{passages}"
        );
        assert!(document().is_ok());
    }

    #[test]
    fn names_follow_the_json_mapping() {
        let doc = build().unwrap();
        let props = &doc["components"]["schemas"]["ModelInfo"]["properties"];
        assert_eq!(props["numFeatures"]["type"], "string", "uint64 is a string");
        assert!(props.get("num_features").is_none());
        let thresholds = &doc["components"]["schemas"]["ScoreRequest"]["properties"]["thresholds"];
        assert_eq!(thresholds["type"], "object");
        assert_eq!(thresholds["additionalProperties"]["type"], "number");
    }
}
