import NIOCore

extension ECSClient {
    /// Nova server details as the reconcile loops read them (`GET /v2.1/{project_id}/servers/detail`,
    /// marker-paged like `serverDetails`, with the same page cap and repeated-cursor checks), decoded
    /// by `ServerListingDecoder` straight from the answer's bytes: each `Server` carries only
    /// `ServerListingDecoder.listedFields`, with the values the full decoder gives them. A page that
    /// cannot be read fails with the same `malformedResponse` error as `serverDetails`.
    public func serverListing(_ query: ServerQuery = ServerQuery()) -> ECSPages<Server> {
        novaServerDetailPages(query) { response in
            let page = try decodeListing(response, operation: "NovaListServersDetails")
            return (page.servers, page.hasNextLink)
        }
    }

    /// Decodes a listing page, mapping a failure to a non-retryable `malformedResponse`, as `decode`.
    func decodeListing(_ response: APIResponse, operation: String) throws -> ServerListingPage {
        do {
            return try response.body.withUnsafeReadableBytes { raw throws(ServerListingDecodingError) in
                try ServerListingDecoder.decodePage(raw.assumingMemoryBound(to: UInt8.self))
            }
        } catch {
            throw ECSError(
                kind: .malformedResponse, httpStatus: response.status, message: "cannot decode the answer: \(error)", requestId: response.requestId,
                operation: operation, isRetryable: false)
        }
    }
}
