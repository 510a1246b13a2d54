// The conformance suite run against the in-memory reference: the suite itself is sound and
// assumes nothing about files.
import { repositoryConformance } from "../../../testing/repository_conformance.ts";
import { MemoryRepository } from "./memory_repository.ts";

repositoryConformance("MemoryRepository", () => new MemoryRepository());
