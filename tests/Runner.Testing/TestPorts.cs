using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Runner.Testing;

/// <summary>
/// Loopback ports for servers the tests start in other processes (nats-server, runner replicas),
/// which bind them some time after the test picked them. A port the kernel hands out for
/// <c>bind(0)</c> comes from the ephemeral range: between the pick and the bind, another test
/// process may pick the same one, or an outgoing connection may take it as its local port. So a
/// port is picked below (or above) the ephemeral range, where outgoing connections never land, and
/// reserved for the life of this test process by an exclusive lock on a file named after it, which
/// every test process on the machine honours; the kernel drops the lock when the process ends,
/// however it ends.
/// </summary>
public static class TestPorts
{
    private static readonly ConcurrentBag<FileStream> s_reservations = [];
    private static readonly string s_directory = Path.Combine(Path.GetTempPath(), "runner-test-ports");
    private static readonly (int Low, int High) s_range = OutsideEphemeral();

    /// <summary>A loopback port nothing listens on now, that no other test process will be given.</summary>
    public static int Reserve()
    {
        Directory.CreateDirectory(s_directory);
        for (var attempt = 0; attempt < 2_000; attempt++)
        {
            var port = Random.Shared.Next(s_range.Low, s_range.High + 1);
            if (TryLock(port) && IsFree(port))
            {
                return port;
            }
        }
        throw new InvalidOperationException($"no free loopback port in {s_range.Low}-{s_range.High} after 2,000 tries");
    }

    private static bool TryLock(int port)
    {
        try
        {
            // FileShare.None is an exclusive flock on Unix: held until this process ends.
            s_reservations.Add(new FileStream(Path.Combine(s_directory, port.ToString(CultureInfo.InvariantCulture)),
                FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>The larger stretch of ports outside the kernel's ephemeral range (and above the privileged ones).</summary>
    private static (int Low, int High) OutsideEphemeral()
    {
        var (low, high) = (32768, 60999);
        try
        {
            var parts = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range")
                .Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
            (low, high) = (int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            // Not Linux: the usual range.
        }
        var below = (Low: 10_000, High: low - 1);
        var above = (Low: high + 1, High: 65_535);
        var pick = below.High - below.Low >= above.High - above.Low ? below : above;
        return pick.High - pick.Low >= 1_000 ? pick : (1_024, 65_535);
    }
}
