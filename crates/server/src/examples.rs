//! The example models bundled into the binary and deployed on first start.

/// `(file name, BPMN source)` of every bundled example.
pub const EXAMPLES: [(&str, &str); 5] = [
    ("w1_straight.bpmn", include_str!("../../../examples/w1_straight.bpmn")),
    ("w1_stones.bpmn", include_str!("../../../examples/w1_stones.bpmn")),
    ("w2_usertask.bpmn", include_str!("../../../examples/w2_usertask.bpmn")),
    ("w3_gateways.bpmn", include_str!("../../../examples/w3_gateways.bpmn")),
    ("cluster.bpmn", include_str!("../../../examples/cluster.bpmn")),
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_example_parses() {
        for (file, source) in super::EXAMPLES {
            let defs = flowstone_model::parse_bpmn(source).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(defs.len(), 1, "{file}");
        }
    }
}
