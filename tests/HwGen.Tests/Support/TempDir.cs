namespace HwGen.Tests.Support;

/// <summary>A fresh directory per test, removed afterwards, so tests run in parallel.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "hwgen-test-" + Guid.NewGuid().ToString("N")[..12]);
    public TempDir() => Directory.CreateDirectory(Path);
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

public static class Repo
{
    /// <summary>The repository root (the directory holding HwGen.sln).</summary>
    public static string Root { get; } = Find();

    static string Find()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d is not null && !System.IO.File.Exists(System.IO.Path.Combine(d.FullName, "HwGen.sln"))) d = d.Parent;
        return d?.FullName ?? throw new InvalidOperationException("HwGen.sln not found above the test binaries");
    }

    public static string Example(string name) => System.IO.Path.Combine(Root, "examples", name, "model.onnx");
}
