/// Resolves a flavor's sale state per AZ from its `os_extra_specs` (seed S1 T5-41): the AZ's entry
/// of `cond:operation:az` when present, else `cond:operation:status`, else `normal`. Malformed
/// entries are reported and skipped, never fatal. Pure.
public enum SaleStateResolver {
    /// The documented states.
    public static let knownStates: Set<String> = ["normal", "abandon", "sellout", "obt", "obt_sellout", "promotion"]

    /// Not a state of the API: the flavor (or the AZ) is no longer listed — the reference's
    /// `abandon` is "taken offline (not displayed)". Recorded as a transition, never a silent deletion.
    public static let absent = "absent"

    /// A flavor's states in the given AZs, and what was wrong with its specs.
    public struct Resolution: Sendable, Equatable {
        public var states: [String: String]
        public var problems: [String]
    }

    /// Resolves every AZ of `availabilityZones`.
    public static func resolve(extraSpecs: [String: String], availabilityZones: [String]) -> Resolution {
        var problems: [String] = []
        var regionWide = "normal"
        if let raw = extraSpecs["cond:operation:status"] {
            let value = raw.trimmingCharacters(in: .whitespaces)
            if knownStates.contains(value) {
                regionWide = value
            } else {
                problems.append("cond:operation:status '\(raw)' is not a known sale state; read as normal")
            }
        }
        let (entries, azProblems) = parseAZSpec(extraSpecs["cond:operation:az"] ?? "")
        problems += azProblems
        var states: [String: String] = [:]
        for az in availabilityZones {
            states[az] = entries[az] ?? regionWide
        }
        return Resolution(states: states, problems: problems)
    }

    /// Parses `az0(normal), az1(sellout)`. Entries with empty parentheses, no parentheses, an empty
    /// AZ name, an unknown state or a repeated AZ are reported and skipped.
    public static func parseAZSpec(_ spec: String) -> (entries: [String: String], problems: [String]) {
        var entries: [String: String] = [:]
        var problems: [String] = []
        let trimmedSpec = spec.trimmingCharacters(in: .whitespaces)
        guard !trimmedSpec.isEmpty else { return ([:], []) }
        for piece in trimmedSpec.split(separator: ",", omittingEmptySubsequences: false) {
            let entry = piece.trimmingCharacters(in: .whitespaces)
            if entry.isEmpty {
                problems.append("cond:operation:az has an empty entry")
                continue
            }
            // AZ names carry no parentheses; split on the last "(" to be safe.
            guard entry.hasSuffix(")"), let open = entry.lastIndex(of: "(") else {
                problems.append("cond:operation:az entry '\(entry)' is not NAME(STATE)")
                continue
            }
            let name = entry[..<open].trimmingCharacters(in: .whitespaces)
            let state = entry[entry.index(after: open)..<entry.index(before: entry.endIndex)].trimmingCharacters(in: .whitespaces)
            if name.isEmpty {
                problems.append("cond:operation:az entry '\(entry)' has no AZ name")
            } else if state.isEmpty {
                problems.append("cond:operation:az entry '\(entry)' has empty parentheses (invalid configuration)")
            } else if !knownStates.contains(state) {
                problems.append("cond:operation:az entry '\(entry)' has unknown state '\(state)'")
            } else if entries[name] != nil {
                problems.append("cond:operation:az names \(name) twice; the first entry is kept")
            } else {
                entries[name] = state
            }
        }
        return (entries, problems)
    }

    /// Sold out: `sellout` or `obt_sellout`.
    public static func isSoldOut(_ state: String) -> Bool { state == "sellout" || state == "obt_sellout" }

    /// Orderable: `normal`, `obt` or `promotion` (the states the API lists for an AZ).
    public static func isLaunchable(_ state: String) -> Bool { ["normal", "obt", "promotion"].contains(state) }
}

import Foundation
