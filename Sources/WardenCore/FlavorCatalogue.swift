import ECSAPI
import Synchronization

/// The flavors' sizes as the flavor loop last read them, shared with the loops that need a size
/// (the scheduler's savings: a Nova 2.26 listing names a server's flavor, not its size).
public final class FlavorCatalogue: Sendable {
    public struct Size: Sendable, Equatable {
        public var vcpus: Int
        public var ramMB: Int
    }

    private let sizes = Mutex<[String: Size]>([:])

    public init() {}

    /// Records a region's catalogue (flavor ids are the same across regions of one cloud; the last
    /// reading wins).
    public func record(_ flavors: [Flavor]) {
        sizes.withLock { sizes in
            for flavor in flavors {
                if let vcpus = flavor.vcpus, let ram = flavor.ram { sizes[flavor.id] = Size(vcpus: vcpus, ramMB: ram) }
            }
        }
    }

    /// The size of a flavor, when known.
    public func size(of flavor: String) -> Size? { sizes.withLock { $0[flavor] } }
}
