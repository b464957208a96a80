namespace Upas;
public enum FieldClass { Originator, Destination, Date, MessageId, Other }
public sealed class HeaderField { public required string Name { get; init; } public required FieldClass Class { get; init; } public required string Text { get; init; } public string? FirstAddress { get; init; } }
public sealed class ParsedHeader { public List<HeaderField> Fields { get; } = new(); public bool HasOriginator, HasDestination, HasDate, HasMessageId; public string? EnvelopeFrom, EnvelopeDate; public int Consumed; }
public static class Rfc822 { public static ParsedHeader Parse(string text, Func<string,string> rw) => new ParsedHeader(); }
