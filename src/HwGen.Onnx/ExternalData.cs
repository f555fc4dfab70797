using System.Buffers;
using System.IO.MemoryMappedFiles;
using Google.Protobuf;
using HwGen.Core;
using HwGen.Onnx.Proto;

namespace HwGen.Onnx;

/// <summary>
/// ONNX external data: a tensor whose <c>data_location</c> is EXTERNAL keeps its bytes (raw, little-endian, as
/// <c>raw_data</c> would) in a file named by its <c>external_data</c> entries <c>location</c> (relative to the model's
/// directory), <c>offset</c> (default 0) and <c>length</c> (default: to the end of the file). <see cref="Resolve"/> maps
/// each such file into memory once and points the tensor's <c>raw_data</c> at its slice, without copying, so the model
/// then validates and converts as if its data were inline; disposing unmaps the files (and empties those tensors' raw data,
/// so nothing reads the unmapped memory). A location that is absolute or has a '..' component, a missing file, and an
/// offset or length past the file's end are each one error naming the model, the tensor and the file.
/// </summary>
public sealed class ExternalData : IDisposable
{
    readonly Dictionary<string, MemoryMappedFile> files = [];
    readonly List<(MemoryMappedViewAccessor View, TensorProto Tensor)> views = [];
    readonly Dictionary<TensorProto, StoredBytes> sources = new(ReferenceEqualityComparer.Instance);

    /// <summary>Where a tensor this resolved keeps its bytes (null for one with inline data): a reader that needs them after
    /// the files are unmapped reads them again from there (<see cref="StoredBytes.Read"/>) rather than holding a copy.</summary>
    public StoredBytes? Source(TensorProto t) => sources.GetValueOrDefault(t);

    ExternalData() { }

    /// <summary>Points every tensor with external data (initializers and node attributes of the main graph) at its mapped
    /// bytes; keep the result alive while the tensors' raw data is read.</summary>
    public static ExternalData Resolve(ModelProto model, string modelPath)
    {
        var x = new ExternalData();
        try
        {
            var graph = model.Graph;
            if (graph is null) return x;
            // Each tensor with where messages name it: an initializer by its name, a node's tensor by the node and attribute.
            var names = OnnxLoader.NodeNames(graph);
            var tensors = graph.Initializer.Select(t => (T: t, Node: (string?)null, What: $"tensor '{t.Name}'"))
                .Concat(graph.Node.SelectMany((n, i) => n.Attribute.SelectMany(a => (a.T is null ? a.Tensors : a.Tensors.Prepend(a.T))
                    .Select(t => (T: t, Node: (string?)names[i], What: t.Name.Length > 0 ? $"tensor '{t.Name}'" : $"the tensor of attribute '{a.Name}'")))));
            foreach (var (t, node, what) in tensors.Where(t => t.T.DataLocation == TensorProto.Types.DataLocation.External).ToList())
                x.Map(t, modelPath, node, what);
            return x;
        }
        catch
        {
            x.Dispose();
            throw;
        }
    }

    unsafe void Map(TensorProto t, string modelPath, string? node, string what)
    {
        string? location = null, offsetText = null, lengthText = null;
        foreach (var e in t.ExternalData)
        {
            if (e.Key == "location") location = e.Value;
            else if (e.Key == "offset") offsetText = e.Value;
            else if (e.Key == "length") lengthText = e.Value;
        }
        HwGenException Bad(string why) => HwGenException.At(modelPath, node, $"{what}: external data {why}");
        if (string.IsNullOrEmpty(location)) throw Bad("has no 'location' entry");
        if (location.Contains('\0')) throw Bad($"location '{location.Replace("\0", "\\0")}' holds a NUL character, which no file name has");
        var dir = Path.GetDirectoryName(Path.GetFullPath(modelPath))!;
        var full = Path.GetFullPath(Path.Combine(dir, location));
        if (Path.IsPathRooted(location) || location.Split('/', '\\').Contains("..") || !full.StartsWith(dir + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw Bad($"file '{location}' is not inside the model's directory {dir} (an absolute path or '..'); HwGen reads external data only from there");
        if (!File.Exists(full)) throw Bad($"file '{location}' does not exist in {dir}");
        long size = new FileInfo(full).Length;
        long Number(string? text, string key, long dflt) =>
            text is null ? dflt : long.TryParse(text, out var v) && v >= 0 ? v : throw Bad($"{key} '{text}' of file '{location}' is not a byte count");
        long offset = Number(offsetText, "offset", 0);
        if (offset > size) throw Bad($"offset {offset} is past the end of file '{location}' ({size} bytes)");
        long length = Number(lengthText, "length", size - offset);
        if (length > size - offset) throw Bad($"offset {offset} + length {length} is past the end of file '{location}' ({size} bytes)");
        if (length > int.MaxValue) throw Bad($"of {length} bytes in file '{location}' is more than one tensor may hold");
        t.DataLocation = TensorProto.Types.DataLocation.Default;
        t.ExternalData.Clear();
        if (length == 0)
        {
            t.RawData = ByteString.Empty;
            return;
        }
        if (!files.TryGetValue(full, out var file))
            files[full] = file = MemoryMappedFile.CreateFromFile(full, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        sources[t] = new StoredBytes(full, offset, (int)length);
        var view = file.CreateViewAccessor(offset, length, MemoryMappedFileAccess.Read);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        views.Add((view, t));
        t.RawData = UnsafeByteOperations.UnsafeWrap(new MappedBytes(p + view.PointerOffset, (int)length).Memory);
    }

    public void Dispose()
    {
        foreach (var (view, t) in views)
        {
            t.RawData = ByteString.Empty;
            view.SafeMemoryMappedViewHandle.ReleasePointer();
            view.Dispose();
        }
        views.Clear();
        foreach (var f in files.Values) f.Dispose();
        files.Clear();
    }

    /// <summary>A tensor's bytes in an external data file: <paramref name="Length"/> bytes from <paramref name="Offset"/>.</summary>
    public sealed record StoredBytes(string File, long Offset, int Length)
    {
        /// <summary>Reads the bytes again (one error naming the model and tensor if the file changed since it loaded).</summary>
        public byte[] Read(string modelPath, string tensor)
        {
            var bytes = new byte[Length];
            try
            {
                using var h = System.IO.File.OpenHandle(File);
                for (int at = 0, n; at < Length; at += n)
                    if ((n = RandomAccess.Read(h, bytes.AsSpan(at), Offset + at)) == 0)
                        throw new IOException($"it ends before byte {Offset + Length}");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw HwGenException.At(modelPath, null, $"tensor '{tensor}': external data file '{System.IO.Path.GetFileName(File)}' changed or " +
                    $"went away after the model loaded ({e.Message.TrimEnd('.')})");
            }
            return bytes;
        }
    }

    /// <summary>Mapped bytes as <see cref="Memory{T}"/>, valid while their view is mapped.</summary>
    sealed unsafe class MappedBytes(byte* start, int length) : MemoryManager<byte>
    {
        public override Span<byte> GetSpan() => new(start, length);
        public override MemoryHandle Pin(int elementIndex = 0) => new(start + elementIndex);
        public override void Unpin() { }
        protected override void Dispose(bool disposing) { }
    }
}
