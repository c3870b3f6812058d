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
        try await writeObservations { db in
            var known: [SaleKey: String] = [:]
            for record in try SaleStateRecord.filter(Column("region") == region).fetchAll(db) {
                known[SaleKey(az: record.az, flavor: record.flavor)] = record.state
            }
            var transitions: [SaleTransition] = []
            for (key, state) in states.sorted(by: { ($0.key.az, $0.key.flavor) < ($1.key.az, $1.key.flavor) }) where known[key] != state {
                try SaleStateRecord(region: region, az: key.az, flavor: key.flavor, state: state, since: now).upsert(db)
                var transition = SaleTransitionRecord(id: nil, region: region, az: key.az, flavor: key.flavor, fromState: known[key], toState: state, at: now)
                try transition.insert(db)
                transitions.append(transition.transition)
            }
            // A flavor (or an AZ) no longer listed: a transition to `absent`, then its row goes.
            for key in known.keys.sorted(by: { ($0.az, $0.flavor) < ($1.az, $1.flavor) }) where states[key] == nil {
                _ = try SaleStateRecord.deleteOne(db, key: ["region": region, "az": key.az, "flavor": key.flavor])
                var transition = SaleTransitionRecord(
                    id: nil, region: region, az: key.az, flavor: key.flavor, fromState: known[key], toState: SaleStateResolver.absent, at: now)
                try transition.insert(db)
                transitions.append(transition.transition)
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
