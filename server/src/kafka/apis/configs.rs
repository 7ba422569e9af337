//! DescribeConfigs: a topic's settings (as `sluice topics describe` shows them) and the
//! broker's own, in Kafka's shape — which are defaults, which were set on the topic.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};

use super::*;

// Kafka's ConfigType values (v3+).
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

pub(super) fn describe_configs(
    request: DescribeConfigsRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let wanted = |name: &str| {
                resource
                    .configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
            };
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let entries: Vec<(String, String, i8, i8)> = match resource.resource_type {
                RESOURCE_TOPIC => match shared.log.describe_topic(&resource.resource_name) {
                    Ok(info) => topic_entries(&info.config, &shared.config.topic_defaults),
                    Err(e) => {
                        return result
                            .with_error_code(error_code(&e))
                            .with_error_message(Some(StrBytes::from_string(e.to_string())));
                    }
                },
                RESOURCE_BROKER => broker_entries(shared),
                other => {
                    return result
                        .with_error_code(INVALID_REQUEST)
                        .with_error_message(Some(StrBytes::from_string(format!(
                            "resource type {other} is not supported"
                        ))));
                }
            };
            let configs = entries
                .into_iter()
                .filter(|(name, ..)| wanted(name))
                .map(|(name, value, source, kind)| {
                    let entry = DescribeConfigsResourceResult::default()
                        .with_name(StrBytes::from_string(name))
                        .with_value(Some(StrBytes::from_string(value)))
                        .with_read_only(resource.resource_type == RESOURCE_BROKER)
                        .with_config_source(source);
                    if version >= 3 {
                        entry.with_config_type(kind)
                    } else {
                        entry
                    }
                })
                .collect();
            result.with_configs(configs)
        })
        .collect();
    reply(
        &DescribeConfigsResponse::default().with_results(results),
        version,
    )
}

/// (name, value, source, type) of every topic setting; those equal to the broker's default
/// are reported as defaults.
fn topic_entries(config: &TopicConfig, defaults: &TopicConfig) -> Vec<(String, String, i8, i8)> {
    config
        .entries()
        .into_iter()
        .map(|(name, value)| {
            let source = if defaults.get(name).as_deref() == Some(value.as_str()) {
                DEFAULT_CONFIG
            } else {
                DYNAMIC_TOPIC_CONFIG
            };
            let kind = match name {
                "cleanup.policy" => TYPE_LIST,
                "flush.policy" => TYPE_STRING,
                "max.message.bytes" | "segment.bytes" => TYPE_INT,
                _ => TYPE_LONG,
            };
            (name.to_string(), value, source, kind)
        })
        .collect()
}

fn broker_entries(shared: &Shared) -> Vec<(String, String, i8, i8)> {
    let c = &shared.config;
    vec![
        (
            "auto.create.topics.enable".into(),
            c.auto_create_topics.to_string(),
            STATIC_BROKER_CONFIG,
            TYPE_BOOLEAN,
        ),
        (
            "num.partitions".into(),
            c.default_partitions.to_string(),
            STATIC_BROKER_CONFIG,
            TYPE_INT,
        ),
        (
            "socket.request.max.bytes".into(),
            c.max_request_bytes.to_string(),
            STATIC_BROKER_CONFIG,
            TYPE_INT,
        ),
        (
            "group.initial.rebalance.delay.ms".into(),
            c.groups.initial_rebalance_delay.as_millis().to_string(),
            STATIC_BROKER_CONFIG,
            TYPE_INT,
        ),
        (
            "group.min.session.timeout.ms".into(),
            c.groups.min_session_timeout.as_millis().to_string(),
            STATIC_BROKER_CONFIG,
            TYPE_INT,
        ),
        (
            "group.max.session.timeout.ms".into(),
            c.groups.max_session_timeout.as_millis().to_string(),
            STATIC_BROKER_CONFIG,
            TYPE_INT,
        ),
    ]
}

/// AlterConfigs: a topic's overrides replaced by the request's set (configs not named go
/// back to their defaults), all or nothing per topic.
pub(super) fn alter_configs(
    request: AlterConfigsRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
    let responses = request
        .resources
        .iter()
        .map(|resource| {
            let named: Vec<(String, Option<String>)> = resource
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect();
            let outcome = alter_topic(
                shared,
                resource.resource_type,
                &resource.resource_name,
                request.validate_only,
                |current| {
                    let mut changes: Vec<(String, Option<String>)> = current
                        .overrides()
                        .into_keys()
                        .filter(|k| !named.iter().any(|(n, _)| n == k))
                        .map(|k| (k.to_string(), None))
                        .collect();
                    changes.extend(named.iter().cloned());
                    Ok(changes)
                },
            );
            let (code, message) = outcome.err().unwrap_or((NONE, None));
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_string))
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone())
        })
        .collect();
    reply(
        &AlterConfigsResponse::default().with_responses(responses),
        version,
    )
}

/// IncrementalAlterConfigs: SET, DELETE (back to the default), APPEND and SUBTRACT (list
/// configs: `cleanup.policy`), all or nothing per topic.
pub(super) fn incremental_alter_configs(
    request: IncrementalAlterConfigsRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
    let responses = request
        .resources
        .iter()
        .map(|resource| {
            let outcome = alter_topic(
                shared,
                resource.resource_type,
                &resource.resource_name,
                request.validate_only,
                |current| {
                    resource
                        .configs
                        .iter()
                        .map(|c| {
                            let name = c.name.to_string();
                            let value = c.value.as_ref().map(|v| v.to_string());
                            incremental_change(current, name, c.config_operation, value)
                        })
                        .collect()
                },
            );
            let (code, message) = outcome.err().unwrap_or((NONE, None));
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_string))
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone())
        })
        .collect();
    reply(
        &IncrementalAlterConfigsResponse::default().with_responses(responses),
        version,
    )
}

/// One incremental operation as a set (`Some`) or reset (`None`) of a config.
fn incremental_change(
    current: &TopicConfig,
    name: String,
    operation: i8,
    value: Option<String>,
) -> Result<(String, Option<String>), (i16, Option<String>)> {
    let invalid = |m: String| (INVALID_CONFIG, Some(m));
    match operation {
        0 => Ok((name, value)),
        1 => Ok((name, None)),
        2 | 3 => {
            if name != "cleanup.policy" {
                return Err(invalid(format!(
                    "APPEND and SUBTRACT apply to list configs; '{name}' is not one"
                )));
            }
            let mut items: Vec<String> = current
                .get(&name)
                .unwrap_or_default()
                .split(',')
                .map(str::to_string)
                .collect();
            for v in value.unwrap_or_default().split(',').map(str::trim) {
                if operation == 2 && !items.iter().any(|i| i == v) {
                    items.push(v.to_string());
                }
                if operation == 3 {
                    items.retain(|i| i != v);
                }
            }
            if items.is_empty() {
                return Err(invalid("cleanup.policy cannot be empty".into()));
            }
            Ok((name, Some(items.join(","))))
        }
        other => Err((
            INVALID_REQUEST,
            Some(format!("unknown config operation {other}")),
        )),
    }
}

/// Applies the changes `plan` derives from a topic's current config (checked on a copy
/// first; written unless `validate_only`). Broker configs cannot be changed at runtime.
fn alter_topic(
    shared: &Shared,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    plan: impl FnOnce(&TopicConfig) -> Result<Vec<(String, Option<String>)>, (i16, Option<String>)>,
) -> Result<(), (i16, Option<String>)> {
    let storage = |e: StorageError| (error_code(&e), Some(e.to_string()));
    if resource_type != RESOURCE_TOPIC {
        return Err((
            INVALID_REQUEST,
            Some("only topic configs can be changed while Sluice runs".into()),
        ));
    }
    let current = shared.log.describe_topic(name).map_err(storage)?.config;
    let changes = plan(&current)?;
    let mut checked = current.clone();
    for (key, value) in &changes {
        match value {
            Some(v) => checked.set(key, v),
            None => checked.reset(key),
        }
        .map_err(storage)?;
    }
    if validate_only {
        return Ok(());
    }
    shared
        .log
        .alter_topic_config(name, &changes)
        .map(|_| ())
        .map_err(storage)
}
