using System.IO.Pipelines;

namespace Runner.Slice.Engine;

/// <summary>
/// A JSONL or CSV file written to <c>PATH.part</c> and renamed to <c>PATH</c> when the run
/// succeeds, so readers never see a half file. A commit flushes and fsyncs the temp file; a resumed
/// run truncates it to the committed length, dropping whatever an interrupted run wrote after its
/// last checkpoint. A CSV file's columns are the fields of the first record written.
/// </summary>
internal sealed class FileSink(string path, bool csv, FieldTable fields) : ISink
{
    private FileStream? _stream;
    private PipeWriter? _pipe;
    private OutputBuffer? _output;
    private long _records;
    private int[]? _columns;
    private IReadOnlyList<string>? _columnNames;

    public string Path { get; } = System.IO.Path.GetFullPath(path);

    public string TempPath => TempOf(Path);

    private static string TempOf(string path) => path + ".part";

    public (string Namespace, string Name) Dataset => ("file", Path);

    public long Records => _records;

    public long Bytes => _output?.BytesWritten ?? 0;

    public ValueTask OpenAsync(SinkPosition? resume, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        if (resume is not null && File.Exists(TempPath) && new FileInfo(TempPath).Length >= resume.Bytes)
        {
            _stream = new FileStream(TempPath, FileMode.Open, FileAccess.Write, FileShare.Read, bufferSize: 1, FileOptions.Asynchronous);
            _stream.SetLength(resume.Bytes);
            _stream.Seek(resume.Bytes, SeekOrigin.Begin);
            _records = resume.Records;
            _columnNames = resume.Columns;
            _columns = resume.Columns is { } names ? [.. names.Select(fields.Intern)] : null;
        }
        else
        {
            if (resume is not null && resume.Bytes > 0)
            {
                throw new InvalidDataException($"cannot resume: {TempPath} is missing or shorter than the {resume.Bytes} bytes the checkpoint recorded");
            }
            _stream = new FileStream(TempPath, FileMode.Create, FileAccess.Write, FileShare.Read, bufferSize: 1, FileOptions.Asynchronous);
        }
        _pipe = PipeWriter.Create(_stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024, leaveOpen: true));
        _output = new OutputBuffer(_pipe, _stream.Position);
        return ValueTask.CompletedTask;
    }

    public void Write(SliceRecord record)
    {
        if (csv)
        {
            WriteCsv(record);
        }
        else
        {
            RecordWriter.WriteJson(record, _output!);
        }
        _records++;
    }

    public void WriteDeadLetter(DeadLetter dead, RecordBatch batch, string runId)
    {
        RecordWriter.WriteDeadLetter(dead, batch, runId, _output!);
        _records++;
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken) => _output!.FlushAsync(cancellationToken);

    public async ValueTask<SinkPosition> CommitAsync(CancellationToken cancellationToken)
    {
        await _output!.FlushAsync(cancellationToken).ConfigureAwait(false);
        _stream!.Flush(flushToDisk: true);
        return new SinkPosition(_output.BytesWritten, _records, _columnNames);
    }

    public async ValueTask PublishAsync(CancellationToken cancellationToken)
    {
        await CommitAsync(cancellationToken).ConfigureAwait(false);
        await CloseAsync().ConfigureAwait(false);
        File.Move(TempPath, Path, overwrite: true);
    }

    /// <summary>Renames a temp output left by a run that completed but died before its rename (idempotent).</summary>
    public static void CompletePublish(string path)
    {
        var temp = TempOf(path);
        if (File.Exists(temp))
        {
            File.Move(temp, path, overwrite: true);
        }
    }

    public async ValueTask AbandonAsync()
    {
        await CloseAsync().ConfigureAwait(false);
        File.Delete(TempPath);
    }

    public ValueTask DisposeAsync() => CloseAsync();

    private async ValueTask CloseAsync()
    {
        if (_pipe is not null)
        {
            await _pipe.CompleteAsync().ConfigureAwait(false);
            _pipe = null;
        }
        if (_stream is not null)
        {
            await _stream.DisposeAsync().ConfigureAwait(false);
            _stream = null;
        }
    }

    private void WriteCsv(SliceRecord record)
    {
        var output = _output!;
        if (_columns is null)
        {
            var entries = record.Entries;
            _columns = new int[entries.Length];
            for (var i = 0; i < entries.Length; i++)
            {
                _columns[i] = entries[i].Slot;
                if (i > 0)
                {
                    output.WriteByte((byte)',');
                }
                output.Write(fields[entries[i].Slot].CsvHeader);
            }
            output.WriteByte((byte)'\n');
            _columnNames = [.. _columns.Select(fields.NameOf)];
        }
        for (var i = 0; i < _columns.Length; i++)
        {
            if (i > 0)
            {
                output.WriteByte((byte)',');
            }
            RecordWriter.WriteCsvCell(record, _columns[i], output);
        }
        output.WriteByte((byte)'\n');
    }
}
