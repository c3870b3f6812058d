import Foundation
import PostgresNIO
import WardenCore

extension PostgresStateStore {
    public func saleStates(region: String) async throws -> [SaleKey: SaleStateSince] {
        try await withConnection { [self] connection in
            var states: [SaleKey: SaleStateSince] = [:]
            for row in try await connection.rows("SELECT az, flavor, state, since FROM sale_states WHERE region = \(region)", logger: logger) {
                states[SaleKey(az: try row.value("az"), flavor: try row.value("flavor"))] = SaleStateSince(state: try row.value("state"), since: try row.date("since"))
            }
            return states
        }
    }

    public func recordSaleStates(region: String, states: [SaleKey: String], at now: Date) async throws -> [SaleTransition] {
        try await withTransaction { [self] connection in
            var known: [SaleKey: String] = [:]
            for row in try await connection.rows("SELECT az, flavor, state FROM sale_states WHERE region = \(region) FOR UPDATE", logger: logger) {
                known[SaleKey(az: try row.value("az"), flavor: try row.value("flavor"))] = try row.value("state", as: String.self)
            }
            var transitions: [SaleTransition] = []
            func transition(_ key: SaleKey, from: String?, to: String) async throws {
                try await connection.run(
                    """
                    INSERT INTO sale_transitions (region, az, flavor, from_state, to_state, at)
                    VALUES (\(region), \(key.az), \(key.flavor), \(from), \(to), \(now.timeIntervalSince1970))
                    """, logger: logger)
                transitions.append(try SaleTransition.make(region: region, az: key.az, flavor: key.flavor, from: from, to: to, at: now))
            }
            for (key, state) in states.sorted(by: { ($0.key.az, $0.key.flavor) < ($1.key.az, $1.key.flavor) }) where known[key] != state {
                try await connection.run(
                    """
                    INSERT INTO sale_states (region, az, flavor, state, since) VALUES (\(region), \(key.az), \(key.flavor), \(state), \(now.timeIntervalSince1970))
                    ON CONFLICT (region, az, flavor) DO UPDATE SET state = EXCLUDED.state, since = EXCLUDED.since
                    """, logger: logger)
                try await transition(key, from: known[key], to: state)
            }
            // A flavor (or an AZ) no longer listed: a transition to `absent`, then its row goes.
            for key in known.keys.sorted(by: { ($0.az, $0.flavor) < ($1.az, $1.flavor) }) where states[key] == nil {
                try await connection.run(
                    "DELETE FROM sale_states WHERE region = \(region) AND az = \(key.az) AND flavor = \(key.flavor)", logger: logger)
                try await transition(key, from: known[key], to: SaleStateResolver.absent)
            }
            return transitions
        }
    }

    public func saleTransitions(region: String?, since: Date?, limit: Int) async throws -> [SaleTransition] {
        try await withConnection { [self] connection in
            try await connection.rows(
                """
                SELECT region, az, flavor, from_state, to_state, at FROM sale_transitions
                WHERE at >= \(since?.timeIntervalSince1970 ?? 0) AND (\(region)::text IS NULL OR region = \(region)::text)
                ORDER BY id DESC LIMIT \(max(0, limit))
                """, logger: logger
            ).reversed().map { row in
                try SaleTransition.make(
                    region: try row.value("region"), az: try row.value("az"), flavor: try row.value("flavor"), from: try row.value("from_state"),
                    to: try row.value("to_state"), at: try row.date("at"))
            }
        }
    }
}

extension SaleTransition {
    /// A transition built from its values. WardenCore gives `SaleTransition` no public
    /// initializer (its memberwise one is internal), so it is built through its `Codable` form,
    /// which keeps every value exactly (dates as their own Double).
    static func make(region: String, az: String, flavor: String, from: String?, to: String, at: Date) throws -> SaleTransition {
        struct Values: Encodable {
            var region, az, flavor: String
            var from: String?
            var to: String
            var at: Date
        }
        let data = try JSONEncoder().encode(Values(region: region, az: az, flavor: flavor, from: from, to: to, at: at))
        return try JSONDecoder().decode(SaleTransition.self, from: data)
    }
}
