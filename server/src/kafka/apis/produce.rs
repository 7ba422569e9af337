//! Produce: stored batches appended as they are (validated, offsets assigned in place),
//! acknowledged under the topic's flush policy; acks=0 answers nothing. Batches of an
//! idempotent producer go through its sequence check (`producers`); InitProducerId gives
//! such producers their ids.

use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};

use super::*;
use crate::kafka::producers;

pub(super) fn init_producer_id(
    request: InitProducerIdRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    let response = InitProducerIdResponse::default();
    if request.transactional_id.is_some() {
        tracing::warn!("a transactional producer was refused: transactions are not supported");
        return reply(
            &response
                .with_error_code(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
            version,
        );
    }
    // A producer that asks again with its id (v3+) gets its epoch bumped.
    let (id, epoch) = match (request.producer_id.0, request.producer_epoch) {
        (id, epoch) if id >= 0 && (0..i16::MAX - 1).contains(&epoch) => (id, epoch + 1),
        _ => (shared.producers.allocate(), 0),
    };
    reply(
        &response
            .with_error_code(NONE)
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        version,
    )
}

pub(super) fn produce(
    request: ProduceRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    let mut responses = Vec::new();
    for t in &request.topic_data {
        let topic_name = t.name.0.to_string();
        let known = topic(shared, &topic_name, true);
        let mut partitions = Vec::new();
        for p in &t.partition_data {
            let mut response = PartitionProduceResponse::default()
                .with_index(p.index)
                .with_log_append_time_ms(-1);
            // The storage error's words, for the response's error message (v8+), and the
            // records it refused (record errors, v8+).
            let mut message: Option<String> = None;
            let mut refused: Vec<u32> = Vec::new();
            let appended = known.as_ref().map_err(error_code).and_then(|_| {
                let mut batches = p.records.as_ref().map(|r| r.to_vec()).unwrap_or_default();
                let partition = u32::try_from(p.index).map_err(|_| UNKNOWN_TOPIC_OR_PARTITION)?;
                let mut append = || {
                    shared
                        .log
                        .append(&topic_name, partition, &mut batches)
                        .map(|info| info.base_offset)
                        .map_err(|e| {
                            if let StorageError::RecordRefused { records, .. } = &e {
                                refused.clone_from(records);
                            }
                            message = Some(e.to_string());
                            error_code(&e)
                        })
                };
                let sequenced = producers::sequenced(p.records.as_deref().unwrap_or_default())
                    .map_err(|_| CORRUPT_MESSAGE)?;
                let base_offset = match sequenced {
                    Some(s) => {
                        shared
                            .producers
                            .append_sequenced(s, &topic_name, partition, append)?
                    }
                    None => append()?,
                };
                let (start, _) = shared
                    .log
                    .offsets(&topic_name, partition)
                    .map_err(|e| error_code(&e))?;
                Ok((base_offset, start))
            });
            response = match appended {
                Ok((base, start)) => response
                    .with_base_offset(base as i64)
                    .with_log_start_offset(if version >= 5 { start as i64 } else { -1 }),
                Err(code) => response
                    .with_record_errors(if version >= 8 {
                        refused
                            .iter()
                            .map(|i| {
                                BatchIndexAndErrorMessage::default()
                                    .with_batch_index(*i as i32)
                                    .with_batch_index_error_message(
                                        message.clone().map(StrBytes::from_string),
                                    )
                            })
                            .collect()
                    } else {
                        Vec::new()
                    })
                    .with_error_code(code)
                    .with_error_message(message.filter(|_| version >= 8).map(StrBytes::from_string))
                    .with_base_offset(-1),
            };
            partitions.push(response);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_partition_responses(partitions),
        );
    }
    // acks=0: the client waits for nothing; a failure closes the connection, as Kafka does
    // (the only way to tell such a client).
    if request.acks == 0 {
        let failed = responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .any(|p| p.error_code != NONE);
        return if failed {
            Err("an acks=0 produce failed".into())
        } else {
            Ok(Reply::None)
        };
    }
    reply(
        &ProduceResponse::default().with_responses(responses),
        version,
    )
}
