// Hubcast — a first-in first-out queue with O(1) amortised push and pop.

struct FIFO<Element> {
    private var items: [Element?] = []
    private var head = 0

    var isEmpty: Bool { self.head == self.items.count }
    var count: Int { self.items.count - self.head }

    mutating func append(_ element: Element) { self.items.append(element) }

    mutating func popFirst() -> Element? {
        guard self.head < self.items.count else { return nil }
        let element = self.items[self.head]
        self.items[self.head] = nil
        self.head += 1
        if self.head >= 1024 && self.head * 2 >= self.items.count {
            self.items.removeFirst(self.head)
            self.head = 0
        }
        return element
    }

    /// Removes and returns every element, oldest first.
    mutating func removeAll() -> [Element] {
        defer {
            self.items = []
            self.head = 0
        }
        return self.items[self.head...].compactMap { $0 }
    }
}
