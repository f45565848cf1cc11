using Runner.Host.Commands;

namespace Runner.Host;

internal static class Program
{
    private const string Usage = """
        usage: runner <command>
          serve                      run the service (settings from RUNNER_* and RUNNER_CONFIG)
          validate DIR               validate the manifests and scripts under DIR
          quarantine list [--limit N] print quarantined messages (JSON lines) from RUNNER_DATA_DIR
          quarantine show|requeue|discard [--id ID | FILTER] [--dry-run]
                                     every process's quarantine over NATS; requeue puts a message back where it failed
          instances list [--saga S] [--tenant T] [--key K] [--status running|parked|done] [--older-than DUR] [--newer-than DUR] [--limit N] [--json]
                                     list saga instances, each partition answered by its owner
          instances show SAGA KEY [--tenant T] [--json]
                                     one instance: state, timers, pending commands and its history
          instances resume|skip|cancel SAGA KEY [--tenant T]
                                     run a parked instance's held events again / drop the failed one first / compensate it first
          saga test PATH [--manifests DIR]
                                     run golden files (a file, or a directory of *.yaml, *.yml, *.jsonl) offline; exit 1 on a difference
          saga reset SAGA --since TIME [--confirm TOKEN]
                                     every live instance back to its last step before TIME, the rest replayed (dry run, then the token)
          saga check DIR [--saga S] [--sample N] [--timeout DUR] [--json]
                                     replay live instances' history through the scripts in DIR; exit 1 where they diverge
          saga record SAGA KEY [--tenant T] [--out FILE]
                                     write a live instance's kept history as a golden file (JSONL)
          partitions [--json]        print every partition's owner, epoch, lag and snapshot, and the live replicas
          demo                       run combined mode on RUNNER_MANIFESTS, publish the sample events and show sagas completing
          health [--ready]           ask the running service's /health (or /ready); exit 0 when it answers 200 (container health check)
        """;

    public static async Task<int> Main(string[] args)
    {
        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        return args switch
        {
            ["serve", ..] => await ServeCommand.RunAsync(args[1..], stop.Token),
            ["validate", var dir] => ValidateCommand.Run(dir),
            ["quarantine", "list", .. var rest] => QuarantineCommand.List(rest),
            ["quarantine", "show" or "requeue" or "discard", .. var rest] => await QuarantineCommand.RemoteAsync(args[1], rest, stop.Token),
            ["instances", .. var rest] => await InstancesCommand.RunAsync(rest, stop.Token),
            ["saga", "test", .. var rest] => SagaTestCommand.Run(rest),
            ["saga", "reset", .. var rest] => await SagaResetCommand.RunAsync(rest, stop.Token),
            ["saga", "check", .. var rest] => await SagaCheckCommand.RunAsync(rest, stop.Token),
            ["saga", "record", .. var rest] => await SagaRecordCommand.RunAsync(rest, stop.Token),
            ["partitions", .. var rest] => await PartitionsCommand.RunAsync(rest, stop.Token),
            ["demo", ..] => await DemoCommand.RunAsync(stop.Token),
            ["health", .. var rest] => await HealthCommand.RunAsync(rest, stop.Token),
            ["--help" or "-h" or "help"] => PrintUsage(0),
            _ => PrintUsage(2),
        };
    }

    private static int PrintUsage(int code)
    {
        (code == 0 ? Console.Out : Console.Error).WriteLine(Usage);
        return code;
    }
}
