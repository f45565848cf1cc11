using System.Globalization;

namespace Runner.Messaging;

/// <summary>What a <c>nats-server</c> version is known to do that Runner must allow for.</summary>
internal static class NatsServerVersions
{
    /// <summary>The first release that replays a purge by subject as it was made (nats-server 2.9.18 and 2.10.0).</summary>
    public const string PurgeReplayFixedIn = "2.9.18";

    /// <summary>
    /// Whether a server of <paramref name="version"/> replays a purge of a replicated stream, when it
    /// restarts, as "every message up to the stream's last sequence at the time", whatever subject
    /// and sequence the purge named. Such a server's copy of the stream loses messages nobody
    /// purged, and a consumer it leads later skips them without a gap in its delivery sequence. An
    /// unreadable version counts as affected: being wrong that way only keeps messages longer.
    /// </summary>
    public static bool ReplaysPurgeAsCompaction(string? version)
    {
        if (!TryParse(version, out var major, out var minor, out var patch))
        {
            return true;
        }
        return major < 2 || (major == 2 && (minor < 9 || (minor == 9 && patch < 18)));
    }

    private static bool TryParse(string? version, out int major, out int minor, out int patch)
    {
        major = minor = patch = 0;
        if (string.IsNullOrWhiteSpace(version))
        {
            return false;
        }
        // "2.10.4", "v2.9.10", "2.11.0-RC.1": the release's three numbers, anything after them ignored.
        var text = version.Trim().TrimStart('v', 'V');
        var end = text.IndexOfAny(['-', '+', ' ']);
        var parts = (end < 0 ? text : text[..end]).Split('.');
        return parts.Length >= 3
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out major)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out minor)
            && int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out patch);
    }
}
