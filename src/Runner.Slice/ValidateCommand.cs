using Runner.Slice.Contracts;
using Runner.Slice.Specs;

namespace Runner.Slice;

/// <summary><c>runner-slice validate SPEC_FILE</c>: checks a spec and its contract, printing every problem with its line.</summary>
internal static class ValidateCommand
{
    public static int Run(string specFile, TextWriter output, TextWriter errors)
    {
        var (spec, contract, problems) = Load(specFile);
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
        if (contract is not null)
        {
            output.WriteLine($"  contract {contract.Name} v{contract.Version} ({contract.Fields.Count} fields, sha256 {contract.ContentHash[..12]}), on violation {spec.Contract!.OnViolation}, at most {spec.Contract.MaxViolationRatio:P2}");
        }
        return 0;
    }

    /// <summary>The spec and its contract (resolved next to the spec), or every problem found.</summary>
    public static (SliceSpec? Spec, Contract? Contract, List<SpecError> Problems) Load(string specFile)
    {
        if (!File.Exists(specFile))
        {
            return (null, null, [new SpecError(specFile, 0, 0, "spec file not found")]);
        }
        var parsed = SpecParser.Parse(File.ReadAllText(specFile), specFile);
        var problems = parsed.Errors.ToList();
        Contract? contract = null;
        if (parsed.Spec?.Contract is { } reference)
        {
            var path = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(specFile)) ?? ".", reference.Schema));
            if (!File.Exists(path))
            {
                problems.Add(new SpecError(specFile, 0, 0, $"contract.schema '{reference.Schema}' not found at {path}"));
            }
            else
            {
                var loaded = ContractParser.Parse(File.ReadAllText(path), path);
                problems.AddRange(loaded.Errors);
                contract = loaded.Contract;
            }
        }
        return (problems.Count == 0 ? parsed.Spec : null, contract, problems);
    }

    private static string Describe(Endpoint endpoint, SliceSpec spec) =>
        endpoint.Type == Endpoint.JetStream ? $"jetstream {endpoint.Subject}" : $"{endpoint.Type} {spec.Expand(endpoint.Path!)}";
}
