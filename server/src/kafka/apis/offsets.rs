//! ListOffsets: the earliest, the latest, or the first offset at a timestamp.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};

use super::*;

pub(super) fn list_offsets(
    request: ListOffsetsRequest,
    version: i16,
    shared: &Shared,
) -> Result<Reply, String> {
    const LATEST: i64 = -1;
    const EARLIEST: i64 = -2;
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let topic_name = t.name.0.to_string();
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    let Ok(partition) = u32::try_from(p.partition_index) else {
                        return response.with_error_code(UNKNOWN_TOPIC_OR_PARTITION);
                    };
                    let found = match p.timestamp {
                        LATEST | EARLIEST => shared
                            .log
                            .offsets(&topic_name, partition)
                            .map(|(s, e)| Some(if p.timestamp == LATEST { e } else { s })),
                        ts => shared.log.offset_for_timestamp(&topic_name, partition, ts),
                    };
                    match found {
                        Ok(Some(o)) => response
                            .with_offset(o as i64)
                            .with_leader_epoch(if version >= 4 { 0 } else { -1 }),
                        Ok(None) => response,
                        Err(e) => response.with_error_code(error_code(&e)),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    reply(&ListOffsetsResponse::default().with_topics(topics), version)
}
