//! Any text given as a bk-sops YAML export is read or refused; nothing panics, and aliases
//! cannot expand without bound.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = flowstone_model::parse_yaml_templates(text);
});
