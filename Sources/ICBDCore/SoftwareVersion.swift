/// The version of this build of icbd, reported by Health/Check and `icbd --version`.
public enum SoftwareVersion {
    public static let current = "0.1.0"
}
