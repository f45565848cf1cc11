using Runner.Slice.Contracts;
using Runner.Slice.Specs;

namespace Runner.Slice;

/// <summary><c>runner-slice validate SPEC_FILE</c>: checks a spec and its contracts, printing every problem with its line.</summary>
internal static class ValidateCommand
{
    public static int Run(string specFile, TextWriter output, TextWriter errors)
    {
        var (spec, contracts, problems) = Load(specFile);
        if (problems.Count > 0)
        {
            foreach (var problem in problems)
            {
                errors.WriteLine(problem);
            }
            errors.WriteLine($"invalid: {problems.Count} problem(s)");
            return 1;
        }
        output.WriteLine($"ok: run {spec!.Run.Id} of {spec.Run.Job.Namespace}/{spec.Run.Job.Name}");
        output.WriteLine($"  source {Describe(spec.Source, spec)} → {spec.Transforms.Count} transform(s) → sink {Describe(spec.Sink, spec)}");
        Describe(output, spec.Source.Contract, contracts.Source, "the source reads, before any transform", "refused before the transforms");
        foreach (var transform in spec.Transforms)
        {
            var detail = transform.Type switch
            {
                TransformSpec.Filter => transform.Where,
                TransformSpec.Select => string.Join(", ", transform.Fields),
                _ => string.Join(", ", transform.Set.Select(s => $"{s.Key} = {s.Value}")),
            };
            output.WriteLine($"  {transform.Type}: {detail}");
        }
        Describe(output, spec.Sink.Contract, contracts.Sink, "the sink receives", "dead-lettered, on either side");
        return 0;
    }

    /// <summary>The spec and its contracts (paths relative to the spec file), or every problem found.</summary>
    public static (SliceSpec? Spec, RunContracts Contracts, List<SpecError> Problems) Load(string specFile)
    {
        if (!File.Exists(specFile))
        {
            return (null, RunContracts.None, [new SpecError(specFile, 0, 0, "spec file not found")]);
        }
        var parsed = SpecParser.Parse(File.ReadAllText(specFile), specFile);
        var problems = parsed.Errors.ToList();
        var contracts = new RunContracts(
            LoadContract(specFile, parsed.Spec?.Source.Contract, problems),
            LoadContract(specFile, parsed.Spec?.Sink.Contract, problems));
        return (problems.Count == 0 ? parsed.Spec : null, contracts, problems);
    }

    private static Contract? LoadContract(string specFile, ContractRef? reference, List<SpecError> problems)
    {
        if (reference is null)
        {
            return null;
        }
        var path = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(specFile)) ?? ".", reference.Schema));
        if (!File.Exists(path))
        {
            problems.Add(new SpecError(specFile, reference.Line, reference.Column, $"{reference.Key}.schema '{reference.Schema}' not found at {path}"));
            return null;
        }
        var loaded = ContractParser.Parse(File.ReadAllText(path), path);
        problems.AddRange(loaded.Errors);
        return loaded.Contract;
    }

    private static void Describe(TextWriter output, ContractRef? reference, Contract? contract, string checks, string counted)
    {
        if (reference is null || contract is null)
        {
            return;
        }
        var shorthand = reference.Key == "contract" ? " (the top-level contract is shorthand for sink.contract)" : "";
        output.WriteLine($"  {reference.Key} {contract.Name} v{contract.Version} ({contract.Fields.Count} fields, sha256 {contract.ContentHash[..12]}) checks every record {checks}; on violation {reference.OnViolation}; at most {reference.MaxViolationRatio:P2} of the records read {counted}{shorthand}");
    }

    private static string Describe(Endpoint endpoint, SliceSpec spec) =>
        endpoint.Type == Endpoint.JetStream ? $"jetstream {endpoint.Subject}" : $"{endpoint.Type} {spec.Expand(endpoint.Path!)}";
}
