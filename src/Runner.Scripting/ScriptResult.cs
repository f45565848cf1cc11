using Runner.Core.Transitions;

namespace Runner.Scripting;

/// <summary>Why a script run produced no transition. Codes are stable and used as quarantine reasons.</summary>
internal sealed record ScriptFailure(string Code, string Message)
{
    public const string ScriptError = "script_error";
    public const string Timeout = "script_timeout";
    public const string StatementLimit = "script_statement_limit";
    public const string MemoryLimit = "script_memory_limit";
    public const string RecursionLimit = "script_recursion_limit";
    public const string RegexTimeout = "script_regex_timeout";
    public const string OutputContract = "script_output_contract";
    public const string OutputTooLarge = "script_output_too_large";
    public const string NoHandler = "script_no_handler";
    public const string LoadFailed = "script_load_failed";
}

/// <summary>A transition or the reason there is none.</summary>
internal readonly record struct ScriptResult(TransitionOutput? Output, ScriptFailure? Failure)
{
    public bool Succeeded => Output is not null;

    public static ScriptResult Ok(TransitionOutput output) => new(output, null);

    public static ScriptResult Fail(string code, string message) => new(null, new ScriptFailure(code, message));
}
