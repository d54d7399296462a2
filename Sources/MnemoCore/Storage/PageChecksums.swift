import CPageChecksum
import Foundation
import GRDB

/// Page checksums on every SQLite database mnemod keeps on disk (the `CPageChecksum` VFS
/// shim, ours): each page carries a checksum of its content in 8 reserved bytes, verified
/// on every read, so a flipped bit in a row reads as `SQLITE_IOERR_DATA` (the tier is then
/// refused as damaged) instead of as a wrong value. SQLite itself keeps no page checksums;
/// its WAL frames have their own.
enum PageChecksums {
    /// What a read of a page whose checksum fails is reported as.
    static func describe(_ error: any Error) -> String {
        if let db = error as? DatabaseError, db.extendedResultCode == .SQLITE_IOERR_DATA {
            return "a page fails its checksum (SQLITE_IOERR_DATA)"
        }
        return "\(error)"
    }

    /// Registers the shim as the default VFS, once, before the first database is opened.
    static let installed: Bool = mnemo_page_checksums_register() == 0

    /// For `prepareDatabase`: asks for the reserve on this connection's database (a new
    /// database gets it at once; an old one at the next VACUUM).
    static func request(_ db: Database) {
        if let connection = db.sqliteConnection { _ = mnemo_page_checksums_request(connection) }
    }

    /// Whether the database file at `path` reserves the checksum's 8 bytes per page
    /// (byte 20 of its header).
    static func enabled(path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        guard let header = try? handle.read(upToCount: 100), header.count == 100 else { return false }
        return header[20] == 8
    }

    /// Makes `writer`'s database file carry checksums: an old file is rewritten once
    /// (VACUUM, which takes the reserve every connection asked for). Best effort: on a full
    /// disk the rewrite waits for the next start, and the database works without them.
    /// - Returns: whether its pages carry checksums now.
    static func enable(_ writer: DatabasePool, path: String) -> Bool {
        // Checked first: a checkpoint that empties the log at every start would make the next
        // start write a new log header, which fails on a full disk (GRDB's pool needs a
        // non-empty log). A fresh database's first page may still be in the log: checkpointed.
        if enabled(path: path) { return true }
        _ = try? writer.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        if enabled(path: path) { return true }
        guard (try? writer.writeWithoutTransaction { try $0.execute(sql: "VACUUM") }) != nil else { return false }
        _ = try? writer.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        return enabled(path: path)
    }
}
