//! Any text given as a BPMN model is parsed or refused with an error; nothing panics, loops or
//! overflows the stack.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = flowstone_model::parse_bpmn(text);
});
