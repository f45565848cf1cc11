using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Acornima.Ast;
using Jint;
using Jint.Native;
using Jint.Native.Json;
using Jint.Runtime;
using Jint.Runtime.Descriptors;
using Jint.Runtime.Interop;
using Runner.Core.Ids;
using Runner.Core.Transitions;

namespace Runner.Scripting;

/// <summary>
/// One Jint engine holding one loaded saga script, made safe to reuse across instances: every
/// intrinsic (Object.prototype, Array.prototype, Math, JSON...) and everything the script declares
/// at top level is deep-frozen, and the script runs in strict mode, so a write to shared objects
/// throws instead of leaking into the next instance. Time and randomness come only from the input.
/// </summary>
internal sealed partial class ScriptSandbox
{
    private readonly SagaScript _script;
    private readonly Engine _engine;
    private readonly SandboxBudget _budget = new();
    private readonly DeterministicClock _clock = new();
    private readonly SeededRandom _random = new();
    private readonly JsonParser _parser;
    private readonly JsonToJs _json;
    private readonly Func<string, JsValue> _parse;
    private readonly JsValue[] _eventFields = new JsValue[EventArgument.Fields];
    private readonly JsonSerializer _serializer;
    private readonly JsValue _onEvent;
    private readonly JsValue _compensate;
    private readonly JsObject _ctx;
    private readonly PropertyDescriptor _ctxNow;
    private readonly PropertyDescriptor _ctxSaga;
    private readonly PropertyDescriptor _ctxKey;
    private readonly PropertyDescriptor _ctxTenant;
    private ArrayBufferWriter<byte> _output = new(OutputRoom);
    private ScriptInput? _current;

    /// <summary>The room the result's UTF-8 is written into, kept between runs; a larger one made for an outsized result is let go.</summary>
    private const int OutputRoom = 4096;

    public ScriptSandbox(SagaScript script)
    {
        _script = script;
        var limits = script.Limits;
        var parseDepth = 0;
        _engine = new Engine(options =>
        {
            parseDepth = options.Json.MaxParseDepth;
            options.Strict = true;
            options.Interop.Enabled = false;
            options.DisableStringCompilation();
            options.LimitRecursion(limits.Recursion);

            // Jint's own allocation check also charges string concatenations it has not built
            // yet, which our sampled budget cannot see; both apply.
            options.LimitMemory(limits.MemoryMb * 1024L * 1024L);
            options.Constraints.MaxArraySize = (uint)limits.MaxArraySize;
            options.Constraints.RegexTimeout = TimeSpan.FromMilliseconds(limits.RegexTimeoutMs);
            options.TimeSystem = _clock;
            options.Constraint(_budget);
        });
        _parser = new JsonParser(_engine);
        _json = new JsonToJs(_engine, parseDepth, (uint)limits.MaxArraySize);
        _parse = _parser.Parse;
        _serializer = new JsonSerializer(_engine);

        var random = new ClrFunction(_engine, "random", (_, _) => new JsNumber(_random.NextDouble()));
        var id = new ClrFunction(_engine, "id", (_, args) => new JsString(DeriveId(args.Length > 0 ? args[0] : JsValue.Undefined)));
        _engine.Invoke(_engine.Evaluate(SandboxSetup.InstallRandom), JsValue.Undefined, [random]);
        _engine.Invoke(_engine.Evaluate(SandboxSetup.FreezeHostFunctions), JsValue.Undefined, [id, random]);
        _ctxNow = new PropertyDescriptor(JsValue.Undefined, PropertyFlag.OnlyEnumerable);
        _ctxSaga = new PropertyDescriptor(JsValue.Undefined, PropertyFlag.OnlyEnumerable);
        _ctxKey = new PropertyDescriptor(JsValue.Undefined, PropertyFlag.OnlyEnumerable);
        _ctxTenant = new PropertyDescriptor(JsValue.Undefined, PropertyFlag.OnlyEnumerable);
        _ctx = new JsObject(_engine);
        _ctx.FastSetProperty("now", _ctxNow);
        _ctx.FastSetProperty("saga", _ctxSaga);
        _ctx.FastSetProperty("key", _ctxKey);
        _ctx.FastSetProperty("tenant", _ctxTenant);
        _ctx.FastSetProperty("id", new PropertyDescriptor(id, PropertyFlag.OnlyEnumerable));
        _ctx.FastSetProperty("random", new PropertyDescriptor(random, PropertyFlag.OnlyEnumerable));
        _ctx.PreventExtensions();
        _engine.Execute(SandboxSetup.FreezeIntrinsics);

        // Module-level code of the script runs under the same budget as an event.
        _budget.Arm(limits.MaxStatements, TimeSpan.FromMilliseconds(limits.TimeoutMs * 10L), limits.MemoryMb * 1024L * 1024L * 4);
        try
        {
            _engine.Execute(script.Prepared);
        }
        finally
        {
            _budget.Disarm();
        }
        _engine.Execute(SandboxSetup.FreezeUserGlobals(TopLevelConstNames(script.Prepared.Program!)));

        _onEvent = _engine.GetValue("on_event");
        _compensate = script.HasCompensate ? _engine.GetValue("compensate") : JsValue.Undefined;
    }

    /// <summary>Runs one transition. <paramref name="reusable"/> is false when the engine must be dropped.</summary>
    public ScriptResult Run(ScriptInput input, out bool reusable)
    {
        reusable = false;
        var handler = input.Handler == ScriptHandler.Compensate ? _compensate : _onEvent;
        if (handler.IsUndefined())
        {
            reusable = true;
            return ScriptResult.Fail(ScriptFailure.NoHandler, $"script defines no {(input.Handler == ScriptHandler.Compensate ? "compensate" : "on_event")} function");
        }

        var limits = _script.Limits;
        _current = input;
        _clock.NowMs = input.NowMs;
        _random.SeedLazily(input.EventId);
        string? json;
        _budget.Arm(limits.MaxStatements, TimeSpan.FromMilliseconds(limits.TimeoutMs), limits.MemoryMb * 1024L * 1024L);
        try
        {
            var state = StateArgument(input);
            var evt = input.Event is { } sagaEvent
                ? EventArgument.Build(_engine, _json, _parse, sagaEvent, input.Origin, _eventFields)
                : Parse(input.EventJson ?? throw new ArgumentException("a script input needs an event", nameof(input)));
            var ctx = Context(input);
            var returned = _engine.Call(handler, JsValue.Undefined, [state, evt, ctx]);
            if (returned.IsUndefined() || returned.IsNull())
            {
                reusable = true;
                return ScriptResult.Fail(ScriptFailure.OutputContract, "on_event returned nothing; it must return { state, commands, schedules, cancel, done }");
            }
            // To a string, not straight to UTF-8: the string's length cap (Jint's JsString.MaxLength) stops a
            // hostile result early, where the UTF-8 overload builds a document up to four times that first.
            var serialized = _serializer.Serialize(returned);
            json = serialized.IsString() ? serialized.AsString() : null;
            _budget.CheckAfterCall();
        }
        catch (SandboxLimitException ex)
        {
            return ScriptResult.Fail(ex.Code, ex.Message);
        }
        catch (RecursionDepthOverflowException ex)
        {
            return ScriptResult.Fail(ScriptFailure.RecursionLimit, $"recursion deeper than {limits.Recursion}: {ex.Message}");
        }
        catch (MemoryLimitExceededException ex)
        {
            return ScriptResult.Fail(ScriptFailure.MemoryLimit, ex.Message);
        }
        catch (RegexMatchTimeoutException)
        {
            return ScriptResult.Fail(ScriptFailure.RegexTimeout, $"a regular expression ran past {limits.RegexTimeoutMs} ms");
        }
        catch (JavaScriptException ex)
        {
            return ScriptResult.Fail(ScriptFailure.ScriptError, Describe(ex));
        }
        catch (Exception ex) when (ex is JintException or InvalidOperationException or ArgumentException or InsufficientExecutionStackException or OutOfMemoryException)
        {
            return ScriptResult.Fail(ScriptFailure.ScriptError, ex.Message);
        }
        finally
        {
            _budget.Disarm();
            _current = null;
            ClearContext();
        }

        reusable = true;
        if (json is null)
        {
            return ScriptResult.Fail(ScriptFailure.OutputContract, "result is not JSON-serializable");
        }
        // A text of at most a third of the limit in characters is within it in UTF-8 bytes.
        var bytes = json.Length > limits.MaxOutputBytes / 3 ? System.Text.Encoding.UTF8.GetByteCount(json) : json.Length;
        if (bytes > limits.MaxOutputBytes)
        {
            return ScriptResult.Fail(ScriptFailure.OutputTooLarge, $"result is {bytes} bytes of JSON, the limit is {limits.MaxOutputBytes}");
        }
        return Read(json, input.NowMs);
    }

    /// <summary>
    /// The result's UTF-8, written into the room the sandbox keeps and read once from there (the state and the
    /// payloads are elements of the one document read). Strict: text that is not valid Unicode is refused, not
    /// replaced.
    /// </summary>
    private ScriptResult Read(string json, long nowMs)
    {
        var output = _output;
        try
        {
            return TransitionOutputParser.TryParse(json, nowMs, output, out var parsed, out var error)
                ? ScriptResult.Ok(parsed!)
                : ScriptResult.Fail(ScriptFailure.OutputContract, error!);
        }
        finally
        {
            if (output.Capacity > OutputRoom * 16)
            {
                _output = new ArrayBufferWriter<byte>(OutputRoom);
            }
        }
    }

    /// <summary>The <c>state</c> argument: the stored document's UTF-8 bytes when given, else the text; <c>null</c> for a new instance.</summary>
    private JsValue StateArgument(ScriptInput input)
    {
        if (input.State is { ValueKind: not System.Text.Json.JsonValueKind.Undefined } state)
        {
            return _json.TryConvert(JsonMarshal.GetRawUtf8Value(state), out var value) ? value : _parser.Parse(state.GetRawText());
        }
        return input.StateJson is null ? JsValue.Null : Parse(input.StateJson);
    }

    private JsValue Parse(string json) => _json.TryConvert(json, out var value) ? value : _parser.Parse(json);

    /// <summary>
    /// The frozen <c>ctx</c> argument <c>{ now, saga, key, tenant, id, random }</c>: every property enumerable,
    /// not writable, not configurable, and the object not extensible. One object per engine, its values set
    /// by the host for each transition: a script can keep nothing between transitions (top-level code is
    /// consts of literals and functions, all deep-frozen), so it cannot tell this object from a new one.
    /// </summary>
    private JsObject Context(ScriptInput input)
    {
        _ctxNow.Value = new JsNumber(input.NowMs);
        _ctxSaga.Value = _json.String(input.Saga);
        _ctxKey.Value = new JsString(input.Key);
        _ctxTenant.Value = _json.String(input.Tenant);
        return _ctx;
    }

    /// <summary>Lets go of the last transition's values (the key string, above all) once it has run.</summary>
    private void ClearContext()
    {
        _ctxNow.Value = JsValue.Undefined;
        _ctxKey.Value = JsValue.Undefined;
    }

    private string DeriveId(JsValue name)
    {
        var input = _current ?? throw new InvalidOperationException("ctx.id called outside a transition");
        if (!name.IsString() || name.AsString().Length == 0)
        {
            throw new JavaScriptException(_engine.Intrinsics.TypeError, "ctx.id(name) needs a non-empty string name");
        }
        return CommandIds.Derive(new TenantId(input.Tenant), new SagaName(input.Saga), new CorrelationKey(input.Key), input.EventId, name.AsString()).Value;
    }

    private static string Describe(JavaScriptException ex)
    {
        var line = ex.Location.Start.Line;
        return line > 0 ? $"{ex.Message} (line {line})" : ex.Message;
    }

    private static List<string> TopLevelConstNames(Acornima.Ast.Program program)
    {
        var names = new List<string>();
        foreach (var statement in program.Body)
        {
            if (statement is VariableDeclaration declaration)
            {
                foreach (var declarator in declaration.Declarations)
                {
                    if (declarator.Id is Identifier identifier)
                    {
                        names.Add(identifier.Name);
                    }
                    else
                    {
                        throw new InvalidOperationException("top-level const must bind a single name (no destructuring)");
                    }
                }
            }
        }
        return names;
    }
}
