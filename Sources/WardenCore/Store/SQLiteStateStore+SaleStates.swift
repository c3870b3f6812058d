import Foundation
import GRDB

/// A row of `sale_states`: a flavor's current sale state in an AZ.
struct SaleStateRecord: StoredRecord, PersistableRecord {
    static let databaseTableName = "sale_states"

    var region: String
    var az: String
    var flavor: String
    var state: String
    var since: Date
}

/// A row of `sale_transitions`.
struct SaleTransitionRecord: StoredRecord, MutablePersistableRecord {
    static let databaseTableName = "sale_transitions"

    var id: Int64?
    var region: String
    var az: String
    var flavor: String
    var fromState: String?
    var toState: String
    var at: Date

    var transition: SaleTransition { SaleTransition(region: region, az: az, flavor: flavor, from: fromState, to: toState, at: at) }
}

extension SQLiteStateStore {
    public func saleStates(region: String) async throws -> [SaleKey: SaleStateSince] {
        try await fetch { db in
            var states: [SaleKey: SaleStateSince] = [:]
            for record in try SaleStateRecord.filter(Column("region") == region).fetchAll(db) {
                states[SaleKey(az: record.az, flavor: record.flavor)] = SaleStateSince(state: record.state, since: record.since)
            }
            return states
        }
    }

    public func recordSaleStates(region: String, states: [SaleKey: String], at now: Date) async throws -> [SaleTransition] {
        // Every AZ and flavor of a region on each flavors pass: cached statements, rows read in place.
        try await writeObservations { db in
            var known: [SaleKey: String] = [:]
            let rows = try Row.fetchCursor(db.cachedStatement(sql: "SELECT az, flavor, state FROM sale_states WHERE region = ?"), arguments: [region])
            while let row = try rows.next() {
                known[SaleKey(az: try row.decode(String.self, atIndex: 0), flavor: try row.decode(String.self, atIndex: 1))] = try row.decode(String.self, atIndex: 2)
            }
            let upsert = try db.cachedStatement(
                sql: """
                    INSERT INTO sale_states (region, az, flavor, state, since) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (region, az, flavor) DO UPDATE SET state = excluded.state, since = excluded.since
                    """)
            let delete = try db.cachedStatement(sql: "DELETE FROM sale_states WHERE region = ? AND az = ? AND flavor = ?")
            let record = try db.cachedStatement(sql: "INSERT INTO sale_transitions (region, az, flavor, from_state, to_state, at) VALUES (?, ?, ?, ?, ?, ?)")
            var transitions: [SaleTransition] = []
            func transition(_ key: SaleKey, to state: String) throws {
                try record.execute(arguments: [region, key.az, key.flavor, known[key], state, now.timeIntervalSince1970])
                transitions.append(SaleTransition(region: region, az: key.az, flavor: key.flavor, from: known[key], to: state, at: now))
            }
            for (key, state) in states.sorted(by: { ($0.key.az, $0.key.flavor) < ($1.key.az, $1.key.flavor) }) where known[key] != state {
                try upsert.execute(arguments: [region, key.az, key.flavor, state, now.timeIntervalSince1970])
                try transition(key, to: state)
            }
            // A flavor (or an AZ) no longer listed: a transition to `absent`, then its row goes.
            for key in known.keys.sorted(by: { ($0.az, $0.flavor) < ($1.az, $1.flavor) }) where states[key] == nil {
                try delete.execute(arguments: [region, key.az, key.flavor])
                try transition(key, to: SaleStateResolver.absent)
            }
            return transitions
        }
    }

    public func saleTransitions(region: String?, since: Date?, limit: Int) async throws -> [SaleTransition] {
        try await fetch { db in
            var request = SaleTransitionRecord.filter(Column("at") >= (since?.timeIntervalSince1970 ?? 0))
            if let region { request = request.filter(Column("region") == region) }
            return try request.order(Column("id").desc).limit(max(0, limit)).fetchAll(db).reversed().map(\.transition)
        }
    }
}
