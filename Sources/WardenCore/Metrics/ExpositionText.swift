/// The pieces of the Prometheus text exposition format (0.0.4), written byte for byte as
/// swift-prometheus 2.4.1 writes them, so a family kept here reads the same as one of its registry.
enum ExpositionText {
    /// `# HELP name help` (backslash escaped; nothing when the help is empty) and `# TYPE name type`.
    static func header(name: String, help: String, type: String) -> [UInt8] {
        var text = [UInt8]()
        let help = sanitizedHelp(help)
        if !help.isEmpty {
            text.append(contentsOf: "# HELP ".utf8)
            text.append(contentsOf: name.utf8)
            text.append(UInt8(ascii: " "))
            for byte in help.utf8 {
                if byte == UInt8(ascii: "\\") { text.append(contentsOf: #"\\"#.utf8) } else { text.append(byte) }
            }
            text.append(UInt8(ascii: "\n"))
        }
        text.append(contentsOf: "# TYPE ".utf8)
        text.append(contentsOf: name.utf8)
        text.append(UInt8(ascii: " "))
        text.append(contentsOf: type.utf8)
        text.append(UInt8(ascii: "\n"))
        return text
    }

    /// The help text without the characters swift-prometheus strips (controls, line breaks,
    /// invisible and bidirectional formatting characters).
    static func sanitizedHelp(_ help: String) -> String {
        guard help.unicodeScalars.contains(where: isStrippedFromHelp) else { return help }
        var kept = help
        kept.removeAll { $0.unicodeScalars.contains(where: isStrippedFromHelp) }
        return kept
    }

    private static func isStrippedFromHelp(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029, 0x200B, 0x200C, 0x200D, 0x2060, 0x00AD, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    /// `a="x",b="y"` in the order given, values escaped (`\\`, `\"`, `\n`), and the length in
    /// bytes of its first `scopeDepth` labels (the text a scope of that many labels renders to).
    static func labelText(_ labels: [(String, String)], scopeDepth: Int) -> (text: String, scopeLength: Int) {
        var bytes = [UInt8]()
        bytes.reserveCapacity(64)
        var scopeLength = 0
        for (index, (name, value)) in labels.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes.append(contentsOf: name.utf8)
            bytes.append(contentsOf: #"=""#.utf8)
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\\"): bytes.append(contentsOf: #"\\"#.utf8)
                case UInt8(ascii: "\""): bytes.append(contentsOf: #"\""#.utf8)
                case UInt8(ascii: "\n"): bytes.append(contentsOf: #"\n"#.utf8)
                default: bytes.append(byte)
                }
            }
            bytes.append(UInt8(ascii: "\""))
            if index < scopeDepth { scopeLength = bytes.count }
        }
        return (String(decoding: bytes, as: UTF8.self), scopeLength)
    }

    /// Whether the series of label text `text` starts with the labels rendered as `scope`. A byte
    /// prefix is exact: each label ends with its closing quote (quotes inside values are escaped),
    /// so `region="eu-west-0"` does not claim `region="eu-west-01"`.
    static func labelText(_ text: String, isInScope scope: String) -> Bool {
        text.utf8.starts(with: scope.utf8)
    }
}

/// A sample value as the exposition writes it.
protocol ExpositionSampleValue: Equatable, Sendable {
    func appendSampleText(to text: inout [UInt8])
}

extension Double: ExpositionSampleValue {
    /// Swift's own description (`1.0`), as swift-prometheus's gauges write it.
    func appendSampleText(to text: inout [UInt8]) { text.append(contentsOf: "\(self)".utf8) }
}

extension Int64: ExpositionSampleValue {
    /// A whole number (`1`), as swift-prometheus's integer counters write it.
    func appendSampleText(to text: inout [UInt8]) { text.append(contentsOf: "\(self)".utf8) }
}
