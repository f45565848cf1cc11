using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Runner.Slice.Bench;

/// <summary>
/// The streaming core's throughput benchmark: JSONL → filter → select → map → contract → JSONL over
/// a generated file (≥ 2 GB by default, about 200-byte records), measured against the raw ceiling
/// in the same run — the same file read through <see cref="Utf8JsonReader"/> doing nothing else.
/// The pipeline runs as the real <c>runner-slice run</c> process (NativeAOT when published, else
/// the JIT build); peak RSS is the process's high-water mark.
/// </summary>
internal static class Program
{
    private const double TargetMiBs = 150;
    private const double TargetRatio = 0.25;
    private const double TargetRssMiB = 128;

    public static async Task<int> Main(string[] args)
    {
        var options = Options.Parse(args);
        if (options is null)
        {
            await Console.Error.WriteLineAsync(Options.Usage);
            return 2;
        }
        Directory.CreateDirectory(options.WorkDir);
        var input = Path.Combine(options.WorkDir, "orders.jsonl");
        var (records, bytes) = await InputFile.EnsureAsync(input, options.Bytes);
        Console.WriteLine(Inv($"runner-slice bench: {bytes / 1048576.0:F0} MiB, {records:N0} records ({bytes / (double)records:F0} B/record), {Environment.ProcessorCount} cores"));

        var ceiling = Ceiling.Measure(input);
        Console.WriteLine(Inv($"  ceiling  Utf8JsonReader only: {ceiling.Seconds:F2} s, {bytes / 1048576.0 / ceiling.Seconds:F1} MiB/s, {records / ceiling.Seconds:N0} records/s"));

        var slice = SliceProcess.Locate(options.SliceBinary);
        var spec = SpecFile.Write(options.WorkDir, input);
        var run = await SliceProcess.RunAsync(slice, spec, TimeSpan.FromSeconds(options.TimeoutSeconds));
        if (run.ExitCode != 0)
        {
            Console.WriteLine(Inv($"  runner-slice exited {run.ExitCode}: {run.Stderr}"));
            return 1;
        }
        using var result = JsonDocument.Parse(run.Stdout);
        var r = result.RootElement.GetProperty("records");
        var mibs = bytes / 1048576.0 / run.Seconds;
        var ratio = ceiling.Seconds / run.Seconds;
        var rss = run.PeakRssBytes / 1048576.0;
        Console.WriteLine(Inv($"  pipeline {slice.Describe}: {run.Seconds:F2} s, {mibs:F1} MiB/s, {records / run.Seconds:N0} records/s, peak RSS {rss:F1} MiB, cpu {run.CpuSeconds:F2} s"));
        Console.WriteLine(Inv($"           records in {r.GetProperty("in").GetInt64():N0}, out {r.GetProperty("out").GetInt64():N0}, dead-lettered {r.GetProperty("dead_lettered").GetInt64():N0}, filtered {r.GetProperty("filtered").GetInt64():N0}"));
        foreach (var stage in result.RootElement.GetProperty("stages").EnumerateArray())
        {
            var latency = stage.GetProperty("latency_ms");
            Console.WriteLine(Inv($"           {stage.GetProperty("name").GetString(),-10} busy {latency.GetProperty("total").GetDouble() / 1000:F2} s, input depth mean {stage.GetProperty("input_depth").GetProperty("mean").GetDouble():F2}"));
        }
        Console.WriteLine(Inv($"  ratio to ceiling {ratio:F3} (target ≥ {TargetRatio}), throughput target ≥ {TargetMiBs} MiB/s, peak RSS target ≤ {TargetRssMiB} MiB"));
        var met = mibs >= TargetMiBs && ratio >= TargetRatio && rss <= TargetRssMiB;
        Console.WriteLine(met ? "  targets met" : "  targets NOT met");
        if (!options.Keep)
        {
            File.Delete(Path.Combine(options.WorkDir, "out.jsonl"));
            File.Delete(Path.Combine(options.WorkDir, "dead.jsonl"));
        }
        return 0;
    }

    internal static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}

internal sealed record Options(long Bytes, string WorkDir, string? SliceBinary, int TimeoutSeconds, bool Keep)
{
    public const string Usage = "usage: Runner.Slice.Bench [--mib N (default 2048)] [--dir DIR] [--slice PATH_TO_runner-slice] [--timeout-seconds N] [--keep]";

    public static Options? Parse(string[] args)
    {
        long mib = 2048;
        var dir = Path.Combine(Path.GetTempPath(), "runner-slice-bench");
        string? slice = null;
        var timeout = 900;
        var keep = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--mib" when i + 1 < args.Length && long.TryParse(args[i + 1], out mib) && mib > 0:
                    i++;
                    break;
                case "--dir" when i + 1 < args.Length:
                    dir = args[++i];
                    break;
                case "--slice" when i + 1 < args.Length:
                    slice = args[++i];
                    break;
                case "--timeout-seconds" when i + 1 < args.Length && int.TryParse(args[i + 1], out timeout) && timeout > 0:
                    i++;
                    break;
                case "--keep":
                    keep = true;
                    break;
                default:
                    return null;
            }
        }
        return new Options(mib * 1048576, dir, slice, timeout, keep);
    }
}

/// <summary>The generated input: order records of about 200 bytes, a few of them bad, deterministic.</summary>
internal static class InputFile
{
    public static async Task<(long Records, long Bytes)> EnsureAsync(string path, long bytes)
    {
        var marker = path + ".count";
        if (File.Exists(path) && File.Exists(marker) && new FileInfo(path).Length >= bytes)
        {
            var parts = (await File.ReadAllTextAsync(marker)).Split(' ');
            return (long.Parse(parts[0], CultureInfo.InvariantCulture), long.Parse(parts[1], CultureInfo.InvariantCulture));
        }
        var random = new Random(7);
        string[] statuses = ["new", "paid", "shipped"];
        long records = 0, written = 0;
        var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        await using (file)
        {
            var builder = new StringBuilder(256);
            while (written < bytes)
            {
                builder.Clear();
                var orderId = random.Next(1000) == 0 ? Inv($"x-{records}") : Inv($"o-{records}");
                var amount = Math.Round(random.NextDouble() * 5050 - 50, 2);
                builder.Append(Inv($"{{\"order_id\":\"{orderId}\",\"customer_id\":\"c-{random.Next(1, 100_000)}\",\"amount\":{amount},\"status\":\"{statuses[random.Next(3)]}\","));
                builder.Append(Inv($"\"ts\":\"2026-{random.Next(1, 13):00}-{random.Next(1, 29):00}T{random.Next(24):00}:{random.Next(60):00}:{random.Next(60):00}Z\",\"channel\":\"web\",\"currency\":\"EUR\",\"sku\":\"sku-{random.Next(10_000, 99_999)}\",\"region\":\"eu-west-{random.Next(1, 4)}\",\"note\":\"standard delivery\"}}\n"));
                var line = Encoding.UTF8.GetBytes(builder.ToString());
                await file.WriteAsync(line);
                written += line.Length;
                records++;
            }
        }
        await File.WriteAllTextAsync(marker, Inv($"{records} {written}"));
        return (records, written);
    }

    private static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}

/// <summary>The raw ceiling: the file read in large chunks, every line run through <see cref="Utf8JsonReader"/>, nothing else.</summary>
internal static class Ceiling
{
    public static (double Seconds, long Tokens) Measure(string path)
    {
        var buffer = new byte[1 << 20];
        long tokens = 0;
        var started = Stopwatch.GetTimestamp();
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        var carry = 0;
        while (true)
        {
            var read = file.Read(buffer, carry, buffer.Length - carry);
            var filled = carry + read;
            var span = buffer.AsSpan(0, filled);
            while (true)
            {
                var end = span.IndexOf((byte)'\n');
                if (end < 0)
                {
                    break;
                }
                var reader = new Utf8JsonReader(span[..end]);
                while (reader.Read())
                {
                    tokens++;
                }
                span = span[(end + 1)..];
            }
            carry = span.Length;
            span.CopyTo(buffer);
            if (read == 0)
            {
                break;
            }
        }
        return (Stopwatch.GetElapsedTime(started).TotalSeconds, tokens);
    }
}

/// <summary>The bench's spec: the issue's pipeline over the generated file.</summary>
internal static class SpecFile
{
    public static string Write(string dir, string input)
    {
        File.WriteAllText(Path.Combine(dir, "orders.v1.yaml"), """
            contract: orders
            version: 1
            fields:
              order_id: { type: string, required: true, pattern: "^o-[0-9]+$" }
              amount:   { type: number, required: true, min: 0 }
              status:   { type: string, enum: [new, paid, shipped] }
              ts:       { type: timestamp }
            """);
        var spec = Path.Combine(dir, "bench.yaml");
        File.WriteAllText(spec, $$"""
            slice: v1
            run: { id: bench, job: { namespace: bench, name: normalize } }
            source: { type: jsonl, path: "{{input}}" }
            contract: { schema: orders.v1.yaml, on_violation: dead_letter, max_violation_ratio: 0.05 }
            transforms:
              - { type: filter, where: "amount > 0" }
              - { type: select, fields: [order_id, customer_id, amount, status, ts] }
              - { type: map, set: { amount_cents: "amount * 100" } }
            sink: { type: jsonl, path: "{{Path.Combine(dir, "out.jsonl")}}" }
            dead_letter: { type: jsonl, path: "{{Path.Combine(dir, "dead.jsonl")}}" }
            """);
        return spec;
    }
}

internal sealed record SliceBinary(string FileName, string[] Prefix, string Describe);

internal sealed record SliceRun(int ExitCode, double Seconds, double CpuSeconds, long PeakRssBytes, string Stdout, string Stderr);

/// <summary>Runs <c>runner-slice run</c> as a child process, polling its high-water RSS.</summary>
internal static class SliceProcess
{
    public static SliceBinary Locate(string? explicitPath)
    {
        if (explicitPath is not null)
        {
            return new SliceBinary(explicitPath, [], Path.GetFileName(explicitPath));
        }
        var here = AppContext.BaseDirectory;
        var dll = Path.Combine(here, "runner-slice.dll");
        return new SliceBinary("dotnet", [dll], "runner-slice (JIT build)");
    }

    public static async Task<SliceRun> RunAsync(SliceBinary binary, string spec, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(binary.FileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in binary.Prefix)
        {
            start.ArgumentList.Add(arg);
        }
        start.ArgumentList.Add("run");
        start.ArgumentList.Add(spec);
        var started = Stopwatch.GetTimestamp();
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        long peak = 0;
        double cpu = 0;
        using var cts = new CancellationTokenSource(timeout);
        while (!process.HasExited)
        {
            peak = Math.Max(peak, HighWaterMark(process.Id));
            try
            {
                process.Refresh();
                cpu = Math.Max(cpu, process.TotalProcessorTime.TotalSeconds);
            }
            catch (InvalidOperationException)
            {
            }
            try
            {
                await process.WaitForExitAsync(cts.Token).WaitAsync(TimeSpan.FromMilliseconds(20));
            }
            catch (TimeoutException)
            {
            }
        }
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        return new SliceRun(process.ExitCode, seconds, cpu, peak, await stdout, await stderr);
    }

    /// <summary>VmHWM from /proc: the peak resident set so far.</summary>
    private static long HighWaterMark(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }
        return 0;
    }
}
